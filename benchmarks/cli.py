"""What a person waits for at the command line: `zhsearch --help`, `search` and `ask` on the seed index.

Each command runs as its own process (a cold start, as a person types it), ``--runs`` times;
the table gives the median wall seconds and the largest peak RSS (the child's ``ru_maxrss``
from ``wait4``). ``search`` and ``ask`` run twice over: with no server, and beside a
``zhsearch serve`` on 127.0.0.1 over the same index (which the CLI reuses). Then one cold query
is profiled stage by stage in a fresh process (imports, settings, model, index, answering,
the query itself), which is where the time goes when no server is running.

    .venv/bin/python benchmarks/cli.py [--runs 5] [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import Server  # noqa: E402

ZHSEARCH = str(Path(sys.executable).with_name("zhsearch"))
QUESTION = "黃浦區上半年引進了多少家高端服務業企業？"

STAGES = """
import sys, time
began = time.perf_counter()
marks = []
def mark(name):
    marks.append((name, time.perf_counter()))
from index import get_settings, open_configured, ask
mark("import index")
settings = get_settings()
from index.opening import load_model, open_index, load_answering
from index.retrieval.tuning import Tuning
mark("settings")
embedder = load_model(settings)
mark("model (query encoder)")
index = open_index(settings.index_dir, embedder, Tuning.of(settings))
mark("open index")
index.answering = load_answering(settings, model=embedder.name)
mark("answering (span reader)")
index.search(sys.argv[1], 5, "hybrid")
mark("search (first query)")
ask(index, sys.argv[1], 5)
mark("ask (first question)")
previous = began
for name, at in marks:
    print(f"{name}\\t{(at - previous) * 1000:.0f}")
    previous = at
import resource
print(f"peak RSS MB\\t{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of one run of ``command``."""
    began = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 and child.stderr is not None:
        sys.stderr.write(child.stderr.read().decode(errors="replace"))
    return seconds, usage.ru_maxrss / 1024, child.returncode


def measure(label: str, command: list[str], env: dict[str, str], runs: int) -> str:
    results = [timed(command, env) for _ in range(runs)]
    failed = sum(1 for *_, status in results if status != 0)
    walls = [wall for wall, _, _ in results]
    peak = max(rss for _, rss, _ in results)
    print(
        f"{label}: {statistics.median(walls):.2f} s median ({min(walls):.2f}-{max(walls):.2f}), {peak:.0f} MB",
        file=sys.stderr,
    )
    note = f" ({failed} failed)" if failed else ""
    return f"| {label} | {statistics.median(walls):.2f} | {min(walls):.2f}–{max(walls):.2f} | {peak:.0f} |{note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--index-dir", type=Path, default=None, help="default: the seeds, built in a temporary folder")
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = args.index_dir
        if index_dir is None:
            index_dir = Path(scratch) / "index"
            subprocess.run(
                [ZHSEARCH, "build", "--index-dir", str(index_dir), "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
                env=env,
            )  # the seeds, with the default model
        env["ZHSEARCH_INDEX_DIR"] = str(index_dir)
        env.pop("ZHSEARCH_NO_SERVER", None)
        rows = [measure("`zhsearch --help`", [ZHSEARCH, "--help"], env, args.runs)]
        alone = dict(env, ZHSEARCH_NO_SERVER="1")
        for verb in ("search", "ask"):
            rows.append(measure(f"`{verb}`, no server", [ZHSEARCH, verb, QUESTION, "--json"], alone, args.runs))
        with Server(env, Path(scratch) / "server.log") as server:
            for verb in ("search", "ask"):
                rows.append(
                    measure(
                        f"`{verb}`, server running ({server.port})",
                        [ZHSEARCH, verb, QUESTION, "--json"],
                        env,
                        args.runs,
                    )
                )
        stages = subprocess.run(
            [sys.executable, "-c", STAGES, QUESTION], env=alone, capture_output=True, text=True, check=True
        ).stdout
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nCLI on the seed index ({machine}), {args.runs} runs each\n")
    print("| command | median s | range s | peak RSS MB |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print("\nOne cold query in a fresh process, stage by stage (no server):\n")
    print("| stage | ms |")
    print("|---|---|")
    for line in stages.strip().splitlines():
        name, value = line.split("\t")
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()

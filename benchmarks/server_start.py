"""How long ``zhsearch serve`` takes to be ready on the seed index, and how much memory it holds.

Each run starts the server on 127.0.0.1 (a fresh process), times process start to ``/readyz`` 200,
reads its peak RSS (``VmHWM``) at ready, then sends a search, an ask and two one-document writes
(the first write timed: it must not wait for a model load) and reads the peak again; the server is
stopped after each run. Median of ``--runs``. Then the lifespan's steps are profiled in one process
(imports, query model, index, span reader, document model, first encode and ask), RSS after each.

    .venv/bin/python benchmarks/server_start.py [--runs 3]
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

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cli import QUESTION, ZHSEARCH  # noqa: E402
from scale import Server  # noqa: E402

STAGES = """
import sys, time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
began = time.perf_counter()
rows = []
def mark(name):
    global began
    rows.append((name, (time.perf_counter() - began) * 1000, rss()))
    began = time.perf_counter()
import service.app
mark("import service.app")
from index import get_settings, ask
from index.opening import load_model, open_index, load_answering
from index.retrieval.tuning import Tuning
settings = get_settings()
embedder = load_model(settings)
embedder.encode_queries(["預熱"])
mark("query model and one query encode")
index = open_index(settings.index_dir, embedder, Tuning.of(settings))
mark("open the index")
index.answering = load_answering(settings, model=embedder.name)
mark("span reader")
embedder.encode_documents(["預熱"])
mark("document model and one encode")
embedder.encode_documents(["黃浦區是上海市的中心城區，" * 25] * 8)
mark("8 x 300-character document encode")
ask(index, sys.argv[1], 5)
mark("first ask")
for name, ms, mb in rows:
    print(f"{name}\\t{ms:.0f}\\t{mb:.0f}")
"""


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(env: dict[str, str], log: Path) -> dict[str, float]:
    with Server(env, log) as server:
        at_ready = peak_mb(server.process.pid)
        with httpx.Client(base_url=server.base, timeout=120) as client:
            client.post("/v1/search", json={"query": QUESTION, "k": 5}).raise_for_status()
            client.post("/v1/ask", json={"question": QUESTION}).raise_for_status()
            began = time.perf_counter()
            document = {"text": "黃浦區今年新增公園綠地三處，總面積約一萬平方米。"}
            client.put("/v1/documents/bench-write-1", json=document).raise_for_status()
            first_write = time.perf_counter() - began
            document = {"text": "外灘沿線夜景燈光在節假日延長至晚上十一點。"}
            client.put("/v1/documents/bench-write-2", json=document).raise_for_status()
        return {
            "ready_s": server.ready_s,
            "peak_at_ready_mb": at_ready,
            "peak_after_mb": peak_mb(server.process.pid),
            "first_write_s": first_write,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "index"
        subprocess.run(
            [ZHSEARCH, "build", "--index-dir", str(index_dir), "--json"], check=True, env=env, stdout=subprocess.DEVNULL
        )
        env["ZHSEARCH_INDEX_DIR"] = str(index_dir)
        runs = []
        for n in range(args.runs):
            runs.append(one_run(env, Path(scratch) / "server.log"))
            print(f"run {n + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items()), file=sys.stderr)
        stages = subprocess.run(
            [sys.executable, "-c", STAGES, QUESTION], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\n`zhsearch serve` on the seed index ({machine}), median of {args.runs} runs\n")
    print("| measure | value |")
    print("|---|---|")
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(f"| start to ready | {median['ready_s']:.1f} s |")
    print(f"| peak RSS at ready | {median['peak_at_ready_mb']:.0f} MB |")
    print(f"| peak RSS after a search, an ask and two writes | {median['peak_after_mb']:.0f} MB |")
    print(f"| first write (a short document) | {median['first_write_s']:.2f} s |")
    print("\nThe server's start, step by step in one process (RSS after each step):\n")
    print("| step | ms | RSS after, MB |")
    print("|---|---|---|")
    for line in stages.strip().splitlines():
        name, ms, mb = line.split("\t")
        print(f"| {name} | {ms} | {mb} |")


if __name__ == "__main__":
    main()

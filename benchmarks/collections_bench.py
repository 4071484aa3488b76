"""What collections cost a server: memory and startup with 1 collection and with 101.

In a temporary folder: the seed index is built (``zhsearch build``) as the default collection,
then a server on 127.0.0.1 creates 100 small collections through the API
(``POST /v1/collections``, then ``POST /v1/collections/{name}/documents`` with ~20 short
Chinese documents each, one ``.jsonl``) and stops. Both are made with the model the measured
server uses: ``zhsearch serve``'s default unless ``--model`` (``hashing``: the model-free
embedder, for a quick run; the output says which).

Then ``zhsearch serve`` starts ``--runs`` times on each layout, in turn: the default alone
(``ZHSEARCH_COLLECTIONS_DIR`` an empty folder) and the default plus the 100
(``ZHSEARCH_COLLECTIONS_DIR`` the folder the API filled). Each run reports seconds from the
process start until ``/readyz`` answers 200 (the server opens every collection before), the
peak RSS (VmHWM) and RSS at ready, RSS ``--settle`` seconds later (steady, idle), and RSS after
one search in every collection. Issue target: 101 collections under 2x the memory and 2x the
startup time of one. Numbers are medians over the runs; every server stops on its own.

    .venv/bin/python benchmarks/collections_bench.py [--runs 3] [--model hashing]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from scale import Server, memory_mb, pool  # noqa: E402

from index.models.cache import DEFAULT_MODEL_NAME  # noqa: E402

COLLECTIONS = 100
DOCUMENTS = 20  # per collection
TARGET = 2.0
OUT = ROOT / "benchmarks" / "out" / "collections.json"


def server_env(work: Path, collections_dir: Path, model: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "ZHSEARCH_INDEX_DIR": str(work / "index"),
        "ZHSEARCH_COLLECTIONS_DIR": str(collections_dir),
    }
    for name in ("ZHSEARCH_KEYS_FILE", "ZHSEARCH_API_KEY", "ZHSEARCH_READ_KEY"):  # local, no keys: admin
        env.pop(name, None)
    if model is not None:
        env["ZHSEARCH_MODEL"] = model
    return env


def documents(n: int, sentences: list[str]) -> bytes:
    """Collection ``n``'s documents: one ``.jsonl`` of ``DOCUMENTS`` short ones (one or two sentences)."""
    rng = random.Random(n)
    lines = [
        json.dumps(
            {"_id": f"c{n}-{i}", "title": f"第{n}集第{i}篇", "text": "".join(rng.sample(sentences, rng.randint(1, 2)))},
            ensure_ascii=False,
        )
        for i in range(DOCUMENTS)
    ]
    return "\n".join(lines).encode()


def prepare(work: Path, model: str | None) -> dict[str, float]:
    """The default collection (the seed index) and the 100 collections, made with ``model``."""
    began = time.perf_counter()
    print("[collections] building the seed index (the default collection)…", file=sys.stderr, flush=True)
    with (work / "build.log").open("wb") as log:
        subprocess.run(
            [sys.executable, "-m", "service.cli", "build"],
            cwd=ROOT,
            env=server_env(work, work / "collections", model),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=600,
        )
    built = time.perf_counter()
    print(f"[collections] creating {COLLECTIONS} collections of {DOCUMENTS} documents…", file=sys.stderr, flush=True)
    sentences = pool()
    with (
        Server(server_env(work, work / "collections", model), work / "setup.log") as server,
        httpx.Client(base_url=server.base, timeout=600) as client,
    ):
        for n in range(COLLECTIONS):
            name = f"c{n:03d}"
            client.post("/v1/collections", json={"name": name, "description": f"小集合{n}"}).raise_for_status()
            client.post(
                f"/v1/collections/{name}/documents",
                files=[("file", (f"{name}.jsonl", documents(n, sentences), "application/jsonl"))],
            ).raise_for_status()
        listed = client.get("/v1/collections").raise_for_status().json()["collections"]
        if len(listed) != COLLECTIONS + 1 or any(c["documents"] != DOCUMENTS for c in listed if c["name"] != "default"):
            raise RuntimeError(f"the collections are not as written: {listed[:3]}…")
    return {"build_default_s": built - began, "create_collections_s": time.perf_counter() - built}


def one_run(work: Path, collections_dir: Path, model: str | None, settle: float, log: Path) -> dict[str, float]:
    with Server(server_env(work, collections_dir, model), log) as server:
        pid = server.process.pid
        at_ready = memory_mb(pid)
        time.sleep(settle)
        steady = memory_mb(pid)
        with httpx.Client(base_url=server.base, timeout=600) as client:
            names = [c["name"] for c in client.get("/v1/collections").raise_for_status().json()["collections"]]
            for name in names:
                path = "/v1/search" if name == "default" else f"/v1/collections/{name}/search"
                client.post(path, json={"query": "系統的記憶體用量", "k": 5}).raise_for_status()
        used = memory_mb(pid)
        return {
            "collections": len(names),
            "ready_s": server.ready_s,
            "rss_ready_mb": at_ready["VmRSS"],
            "hwm_ready_mb": at_ready["VmHWM"],
            "rss_steady_mb": steady["VmRSS"],
            "anon_steady_mb": steady["RssAnon"],
            "rss_searched_mb": used["VmRSS"],
            "hwm_end_mb": used["VmHWM"],
        }


MEASURES = [
    ("startup until /readyz 200, s", "ready_s", "{:.1f}"),
    ("peak RSS (VmHWM) at ready, MB", "hwm_ready_mb", "{:.0f}"),
    ("RSS at ready, MB", "rss_ready_mb", "{:.0f}"),
    ("steady RSS (idle, after settling), MB", "rss_steady_mb", "{:.0f}"),
    ("steady RSS, private part (RssAnon), MB", "anon_steady_mb", "{:.0f}"),
    ("RSS after one search in every collection, MB", "rss_searched_mb", "{:.0f}"),
    ("peak RSS at the end, MB", "hwm_end_mb", "{:.0f}"),
]


def report(facts: dict[str, Any]) -> list[str]:
    one, many = facts["median"]["one"], facts["median"]["many"]
    lines = [
        f"`benchmarks/collections_bench.py{facts['args']}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. Model of the server and of every "
        f"collection's documents: {facts['model']}. Default collection: the seed index; the other "
        f"{COLLECTIONS}: {DOCUMENTS} short Chinese documents each (one or two sentences), created through "
        f"`POST /v1/collections` and their documents API by a server beforehand. `zhsearch serve` on "
        f"127.0.0.1 started {facts['runs']}x per layout, in turn; medians (every run in the JSON). "
        f"Steady: {facts['settle']:.0f} s after ready.",
        "",
        f"| measure | 1 collection | {many['collections']:.0f} collections | ratio | difference |",
        "|---|---|---|---|---|",
    ]
    for label, key, form in MEASURES:
        lines.append(
            f"| {label} | {form.format(one[key])} | {form.format(many[key])} | {many[key] / one[key]:.2f} | "
            f"{many[key] - one[key]:+.1f} |"
        )
    memory = max(many[k] / one[k] for k in ("hwm_ready_mb", "rss_steady_mb"))
    startup = many["ready_s"] / one["ready_s"]
    lines += [
        "",
        f"Memory ratio (worst of peak and steady): {memory:.2f}; startup ratio: {startup:.2f} (targets: under "
        f"{TARGET} each): {'met' if memory < TARGET and startup < TARGET else 'NOT met'}. Preparing: seed index "
        f"{facts['prepare']['build_default_s']:.0f} s, {COLLECTIONS} collections through the API "
        f"{facts['prepare']['create_collections_s']:.0f} s.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="server starts per layout")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after ready before the steady RSS")
    parser.add_argument(
        "--model",
        help="ZHSEARCH_MODEL for the collections and the server (default: zhsearch serve's, "
        f"{DEFAULT_MODEL_NAME}); hashing: the model-free embedder",
    )
    parser.add_argument("--json", type=Path, default=OUT, help=f"where the numbers go (default: {OUT})")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"one": [], "many": []}
    with tempfile.TemporaryDirectory(prefix="zhsearch-collections-") as tmp:
        work = Path(tmp)
        prepared = prepare(work, args.model)
        layouts = {"one": work / "no-collections", "many": work / "collections"}
        layouts["one"].mkdir()
        for run in range(args.runs):
            for layout, collections_dir in layouts.items():
                print(f"[collections] run {run + 1}/{args.runs}: {layout}…", file=sys.stderr, flush=True)
                runs[layout].append(one_run(work, collections_dir, args.model, args.settle, work / f"{layout}.log"))
                print(json.dumps({layout: runs[layout][-1]}), file=sys.stderr, flush=True)
    facts: dict[str, Any] = {
        "args": "".join(f" {a}" for a in sys.argv[1:]),
        "model": (
            f"{args.model} (ZHSEARCH_MODEL={args.model}, not zhsearch serve's default)"
            if args.model
            else f"{DEFAULT_MODEL_NAME} (zhsearch serve's default)"
        ),
        "runs": args.runs,
        "settle": args.settle,
        "prepare": prepared,
        "median": {
            layout: {key: statistics.median(r[key] for r in rows) for key in rows[0]} for layout, rows in runs.items()
        },
        "every_run": runs,
    }
    one, many = facts["median"]["one"], facts["median"]["many"]
    facts["ratios"] = {key: many[key] / one[key] for key in one if key != "collections"}
    print("\n".join(report(facts)))
    text = json.dumps(facts, indent=2, ensure_ascii=False)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n", encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()

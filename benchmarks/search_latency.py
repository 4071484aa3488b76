"""Latency of `/v1/search` on the seed index, beside one bare `encode_query`.

Starts `zhsearch serve` on 127.0.0.1 (a free port), sends a fixed number of
sequential requests, stops the server and prints a Markdown table. The ratio
p50(request) / p50(bare encode) is the figure to compare across machines.

    .venv/bin/python benchmarks/search_latency.py [--requests 200]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import QUERIES, pct  # noqa: E402

from index import build_index, get_settings, load_embedder, load_paths  # noqa: E402
from index.normalize import normalize  # noqa: E402
from tests.server import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    settings = get_settings()
    embedder = load_embedder(settings.model, settings.cache_dir)
    with tempfile.TemporaryDirectory(prefix="zhsearch-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        report = build_index(load_paths([ROOT / "seeds"]), index_dir, embedder)

        bare = []
        for i in range(max(50, args.requests // 2)):
            began = time.perf_counter()
            embedder.encode_queries([normalize(QUERIES[i % len(QUERIES)])])
            bare.append((time.perf_counter() - began) * 1000)

        port = free_port()
        env = os.environ | {"ZHSEARCH_INDEX_DIR": str(index_dir)}
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise SystemExit("server did not start") from None
                        time.sleep(0.3)
                for q in QUERIES:  # warm-up
                    client.get("/v1/search", params={"q": q})
                latencies = []
                for i in range(args.requests):
                    began = time.perf_counter()
                    response = client.get("/v1/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10})
                    latencies.append((time.perf_counter() - began) * 1000)
                    response.raise_for_status()
        finally:
            server.terminate()
            server.wait(timeout=30)

    p50_bare = statistics.median(bare)
    p50 = statistics.median(latencies)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"index: {report.passages} passages, built in {report.seconds:.1f}s ({settings.model})\n")
    print("| measure | p50 ms | p95 ms |")
    print("|---|---|---|")
    print(f"| bare encode_query | {p50_bare:.1f} | {pct(bare, 0.95):.1f} |")
    print(f"| GET /v1/search (hybrid, k=10), {args.requests} sequential | {p50:.1f} | {pct(latencies, 0.95):.1f} |")
    print(f"\nrequest p50 / bare encode p50 = {p50 / p50_bare:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()

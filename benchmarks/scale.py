"""Index mechanics at scale: writes, filtered search, memory and cold start at 100k and 1M passages.

Vectors come from the model-free ``hashing-384`` embedder (384 dimensions, as
multilingual-e5-small's): what is measured is the index (FAISS, BM25, SQLite,
snapshots, the server), not the model. The model's own cost of a write, encoding the
document, is the seed section's figure (``make bench``) and comes on top.

The corpus is synthetic: each document is one passage of about 90 characters made of
three sentences drawn from the seed report plus a unique serial phrase, with a
``group`` field that 1% of documents share (the filter). Below 120 characters a passage
has no sentence vectors, so N documents are N passages and N vectors.

    python benchmarks/scale.py --sizes 100000 1000000    # writes the "Scale" section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from index import Document, build_index, load_paths  # noqa: E402
from index.models.hashing import HashingEmbedder  # noqa: E402
from index.storage.record import folder  # noqa: E402
from index.storage.record.manifest import Manifest  # noqa: E402
from tests.server import free_port  # noqa: E402

MODEL = "hashing-384"
GROUPS = 100  # a filter on one group admits 1% of the documents
WRITES = 200  # single-document PUTs and DELETEs per size
SEARCHES = 200
BATCH = 1000  # documents in the batch upload
MARKER = "## Scale"


def pool() -> list[str]:
    """Sentences of the seed report, 12 to 40 characters long."""
    text = load_paths([ROOT / "seeds"])[0].text
    found = [s.strip() + "。" for s in re.split(r"[。！？\n]", text)]
    return [s for s in found if 12 <= len(s) <= 40]


def document(i: int, sentences: list[str], rng: random.Random) -> Document:
    body = "".join(rng.sample(sentences, 2))[:80]
    return Document(f"s{i}", f"檔案編號{i}號：{body}", title=f"文件{i % 997}", metadata={"group": f"g{i % GROUPS}"})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, and RSS split into private memory (RssAnon) and mapped files (RssFile), in MB.

    The mapped part is the index files' pages a search touched: clean, shared with the page
    cache, and given back by the kernel under pressure, unlike the private part.
    """
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


class Server:
    """``zhsearch serve`` on 127.0.0.1 for the block; ``ready_s``: process start to ``/readyz`` 200."""

    def __init__(self, env: dict[str, str], log: Path, timeout: float = 300) -> None:
        self.env, self.log_path, self.timeout = env, log, timeout
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.log = self.log_path.open("ab")
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log_path.read_text(errors='replace')[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not ready in {self.timeout} s: {self.log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            self.ready_s = time.perf_counter() - began
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=60)
        self.log.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def timed(call: object) -> float:
    began = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - began) * 1000


def measure(size: int, work: Path) -> dict[str, float | str]:
    rng = random.Random(size)
    sentences = pool()
    index_dir = work / f"index-{size}"
    built = folder.current(index_dir) if index_dir.exists() else None
    if built is not None:  # --keep from an earlier run: measure that index again
        manifest = Manifest.read(built / folder.MANIFEST)
        passages, build_s = manifest.passages, manifest.build_seconds
        print(f"[{size}] reusing {built}", file=sys.stderr, flush=True)
    else:
        print(f"[{size}] building {size} documents with {MODEL} vectors…", file=sys.stderr, flush=True)
        docs = [document(i, sentences, rng) for i in range(size)]
        began = time.perf_counter()
        passages = build_index(docs, index_dir, HashingEmbedder(384)).passages
        build_s = time.perf_counter() - began
        del docs
    if "--build-only" in sys.argv:
        return {"passages": passages, "build_s": build_s}
    facts: dict[str, float | str] = {"passages": passages, "build_s": build_s, "disk_mb": folder_mb(index_dir)}
    embedder = HashingEmbedder(384)
    encode_ms = [timed(lambda t=text: embedder.encode_documents([t])) for text in sentences[:50]]
    facts["encode_ms"] = statistics.median(encode_ms)

    env = {**os.environ, "ZHSEARCH_MODEL": MODEL, "ZHSEARCH_INDEX_DIR": str(index_dir), "ZHSEARCH_ENCODE_WORKERS": "1"}
    (work / f"server-{size}.log").unlink(missing_ok=True)
    with Server(env, work / f"server-{size}.log", timeout=3600) as server:
        facts["ready_s"] = server.ready_s
        facts["rss_ready_mb"] = memory_mb(server.process.pid)["VmRSS"]
        with httpx.Client(base_url=server.base, timeout=600) as client:
            queries = [rng.choice(sentences)[:12] for _ in range(SEARCHES)]
            print(f"[{size}] searching…", file=sys.stderr, flush=True)
            plain = [
                timed(lambda q=q: client.get("/v1/search", params={"q": q, "k": 10}).raise_for_status())
                for q in queries
            ]
            filtered = [
                timed(
                    lambda q=q: client.post(
                        "/v1/search", json={"query": q, "k": 10, "filters": {"metadata": {"group": "g7"}}}
                    ).raise_for_status()
                )
                for q in queries
            ]
            print(f"[{size}] single-document writes…", file=sys.stderr, flush=True)
            puts = []
            for n in range(WRITES):
                doc = document(size + n, sentences, rng)
                body = {"text": doc.text, "title": doc.title, "metadata": doc.metadata}
                puts.append(timed(lambda d=doc, b=body: client.put(f"/v1/documents/{d.id}", json=b).raise_for_status()))
            deletes = [
                timed(lambda n=n: client.delete(f"/v1/documents/s{size + n}").raise_for_status()) for n in range(WRITES)
            ]
            lines = [
                json.dumps(
                    {"_id": d.id, "title": d.title, "text": d.text, "group": d.metadata["group"]}, ensure_ascii=False
                )
                for d in (document(size + WRITES + n, sentences, rng) for n in range(BATCH))
            ]
            upload = "\n".join(lines).encode()
            print(f"[{size}] batch upload of {BATCH}…", file=sys.stderr, flush=True)
            batch_ms = timed(
                lambda: client.post(
                    "/v1/documents",
                    params={"replace": "true"},  # an index kept from an earlier run holds the batch already
                    files=[("file", ("batch.jsonl", upload, "application/jsonl"))],
                ).raise_for_status()
            )
            end = memory_mb(server.process.pid)
            facts.update(
                rss_end_mb=end["VmRSS"], hwm_mb=end["VmHWM"], anon_end_mb=end["RssAnon"], file_end_mb=end["RssFile"]
            )
    facts.update(
        search_p50=statistics.median(plain),
        filtered_p50=statistics.median(filtered),
        put_p50=statistics.median(puts),
        put_p95=pct(puts, 0.95),
        put_max=max(puts),
        delete_p50=statistics.median(deletes),
        delete_p95=pct(deletes, 0.95),
        batch_ms=batch_ms,
    )
    return facts


ROWS = [
    ("passages (one vector each, no sentence vectors)", "passages", "{:.0f}"),
    ("build with hashing vectors, s", "build_s", "{:.0f}"),
    ("index on disk, MB", "disk_mb", "{:.0f}"),
    ("cold start to `/readyz`, s", "ready_s", "{:.1f}"),
    ("server RSS at ready / at the end / peak, MB", ("rss_ready_mb", "rss_end_mb", "hwm_mb"), "{:.0f}"),
    ("RSS at the end: private / mapped index files, MB", ("anon_end_mb", "file_end_mb"), "{:.0f}"),
    ("`GET /v1/search` p50 (hybrid, k=10), ms", "search_p50", "{:.1f}"),
    ("`POST /v1/search` p50 with a filter admitting 1%, ms", "filtered_p50", "{:.1f}"),
    ("`PUT` one document p50 / p95 / max, ms", ("put_p50", "put_p95", "put_max"), "{:.1f}"),
    ("`DELETE` one document p50 / p95, ms", ("delete_p50", "delete_p95"), "{:.1f}"),
    (f"upload of {BATCH} documents (one `.jsonl`, one transaction), ms", "batch_ms", "{:.0f}"),
    ("hashing encode of one document (in the PUT), ms", "encode_ms", "{:.2f}"),
]


def section(results: dict[int, dict[str, float | str]]) -> list[str]:
    sizes = sorted(results)
    lines = [
        MARKER,
        "",
        f"`benchmarks/scale.py --sizes {' '.join(map(str, sizes))}` on {time.strftime('%Y-%m-%d')}: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. Vectors from the "
        f"model-free `{MODEL}` embedder (384 dimensions, as the default model's), so what is timed is the "
        "index mechanics, not the model; a real write adds the model's encode of the document (seed "
        "section). Synthetic documents of one ~90-character passage each, 1% of them in the filtered group; "
        f"{WRITES} PUTs of new documents, then {WRITES} DELETEs, over HTTP on 127.0.0.1.",
        "",
        "| measure | " + " | ".join(f"{n:,} documents" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for label, keys, form in ROWS:
        cells = []
        for n in sizes:
            values = [results[n][k] for k in ((keys,) if isinstance(keys, str) else keys)]
            cells.append(" / ".join(form.format(v) for v in values))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(sizes) >= 2:
        large = results[sizes[-1]]
        ratios = "; ".join(
            f"over {n:,}: {float(large['put_p50']) / float(results[n]['put_p50']):.2f}" for n in sizes[:-1]
        )
        lines += [
            "",
            f"PUT p50 at {sizes[-1]:,} {ratios}. Filtered over unfiltered search p50 at {sizes[-1]:,}: "
            f"{float(large['filtered_p50']) / float(large['search_p50']):.2f}.",
        ]
    return lines


def write_section(lines: list[str], out: Path, marker: str = MARKER) -> None:
    """Replace (or append) the section of ``out`` that starts with ``marker`` (the Scale section)."""
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    block = "\n".join(lines) + "\n"
    if marker in text:
        start = text.index(marker)
        rest = text.find("\n## ", start + len(marker))
        text = text[:start] + block + (text[rest + 1 :] if rest >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    out.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--keep", type=Path, help="build the indexes here and reuse them (default: a temporary folder)")
    parser.add_argument("--build-only", action="store_true", help="build (into --keep) and stop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhsearch-scale-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = {}
        for size in args.sizes:
            results[size] = measure(size, work)
            print(json.dumps({size: results[size]}), file=sys.stderr, flush=True)
    if args.build_only:
        return
    lines = section(results)
    write_section(lines, args.out)
    print("\n".join(lines))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""The large-corpus benchmark: chinese-poetry (npm, MIT) as one index.

Fetches the package with `npm pack chinese-poetry` into benchmarks/out/ (not
committed), reads the Tang poems (traditional script), Song poems (traditional)
and Song ci (simplified) through the `.json` collection ingest path, builds an
index, and measures: build throughput, index size, the chosen vector index,
bare query encoding, search latency, and recall@10 of the approximate index
against exact search on the same vectors.

    .venv/bin/python benchmarks/poetry.py [--limit N] [--out benchmarks/out]

Without --limit it indexes all ~333k documents, which takes hours on a 2-core
CPU (the embedding is the cost); --limit takes an evenly spread sample.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import folder_size, pct  # noqa: E402

from index import Searcher, build_index, get_settings, load_embedder, load_paths  # noqa: E402
from index.normalize import normalize  # noqa: E402
from index.vectors import VectorIndex  # noqa: E402

PATTERNS = ("quantangshi/poet.tang.*.json", "quantangshi/poet.song.*.json", "songci/ci.song.*.json")
QUERIES = [
    "床前明月光",
    "明月几时有",
    "春风又绿江南岸",
    "大江东去浪淘尽",
    "离离原上草",
    "寒山寺的钟声",
    "思念故乡的诗",
    "边塞战争",
]


def fetch(out: Path) -> Path:
    dist = out / "package" / "dist"
    if dist.exists():
        return dist
    out.mkdir(parents=True, exist_ok=True)
    name = (
        subprocess.run(
            ["npm", "pack", "chinese-poetry", "--silent"], cwd=out, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    with tarfile.open(out / name) as archive:
        archive.extractall(out, filter="data")
    return dist


def recall_at_10(vectors: VectorIndex, queries: np.ndarray, nprobe: int) -> tuple[float, float]:
    """Recall@10 of an IVF copy of ``vectors`` against exact search, and its p50 search time."""
    ids = vectors.ids()
    data = vectors.vectors(ids.tolist()).astype(np.float32)
    exact = VectorIndex.empty(data.shape[1])
    exact.add(ids.tolist(), data)
    approx = VectorIndex.for_size(data.shape[1], len(data), flat_limit=0)
    approx.add(ids.tolist(), data)
    approx.nprobe = nprobe
    recalls, times = [], []
    for q in queries:
        _, truth = exact.search(q[None, :], 10)
        began = time.perf_counter()
        _, found = approx.search(q[None, :], 10)
        times.append((time.perf_counter() - began) * 1000)
        recalls.append(len(set(found[0]) & set(truth[0])) / 10)
    return float(np.mean(recalls)), float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="documents to index (0 = all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    dist = fetch(args.out)
    files = sorted(p for pattern in PATTERNS for p in dist.glob(pattern))
    docs = load_paths(files)
    if args.limit and args.limit < len(docs):
        step = len(docs) / args.limit
        docs = [docs[int(i * step)] for i in range(args.limit)]
    settings = get_settings()
    embedder = load_embedder(settings.model, settings.cache_dir)
    index_dir = args.out / f"poetry-index-{len(docs)}"
    began = time.perf_counter()
    from service.cli import _Bars

    report = build_index(docs, index_dir, embedder, progress=_Bars(True))
    build_s = time.perf_counter() - began
    searcher = Searcher.load(index_dir, embedder)

    query_vectors = embedder.encode_queries([normalize(q) for q in QUERIES * 25])
    encode_ms, search_ms = [], []
    for i in range(200):
        t0 = time.perf_counter()
        searcher.embedder.encode_queries([normalize(QUERIES[i % len(QUERIES)])])
        t1 = time.perf_counter()
        searcher.search(QUERIES[i % len(QUERIES)], 10)
        encode_ms.append((t1 - t0) * 1000)
        search_ms.append((time.perf_counter() - t1) * 1000)
    sentences = searcher.vectors._sentences  # noqa: SLF001 - the benchmark inspects the parts
    rows = [(nprobe, *recall_at_10(sentences, query_vectors, nprobe)) for nprobe in (4, 8, 16, 32)]

    print(f"| documents | {report.documents} |\n|---|---|")
    print(f"| passages | {report.passages} |")
    print(f"| build | {build_s:.0f} s, {report.passages / build_s:.1f} passages/s (passages and sentences embedded) |")
    print(f"| index size on disk | {folder_size(index_dir) / 1e6:.1f} MB |")
    print(f"| vector index | {searcher.manifest.vector_index} |")
    print(f"| bare encode_query p50 | {np.median(encode_ms):.1f} ms |")
    p95 = pct(search_ms, 0.95)
    print(f"| search (hybrid, k=10, in process) p50 / p95 | {np.median(search_ms):.1f} / {p95:.1f} ms |")
    for nprobe, recall, ms in rows:
        print(f"| IVF (sentence vectors), nprobe={nprobe}: recall@10 vs exact, p50 | {recall:.3f}, {ms:.2f} ms |")


if __name__ == "__main__":
    main()

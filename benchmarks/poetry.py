"""The large-corpus benchmark: chinese-poetry (npm, MIT) as one index.

Fetches the package with `npm pack chinese-poetry` into benchmarks/out/ (not
committed), reads the Tang poems (traditional script), Song poems (traditional)
and Song ci (simplified) through the `.json` collection ingest path, builds an
index, and measures build throughput, peak memory, index size, the chosen
vector index, and recall@10 of the approximate (HNSW) index against exact
search on the same vectors at several ``ef_search`` values. The figures go to
benchmarks/out/poetry.json, where `make bench` (benchmarks/bench.py) finds
them and the index, and adds the `/v1/search` load test to docs/benchmarks.md.

    .venv/bin/python benchmarks/poetry.py [--limit N] [--out benchmarks/out]

Without --limit it indexes all ~333k documents, which takes hours on a 2-core
CPU (embedding is the cost: about 4k tokens/s with e5-small); --limit takes an
evenly spread sample.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import POETRY_RESULTS, folder_size  # noqa: E402

from index import Searcher, build_index, get_settings, load_configured_embedder, load_paths  # noqa: E402
from index.storage.dense.vectors import VectorIndex  # noqa: E402
from index.text.chunk import sentences  # noqa: E402
from index.text.normalize import normalize  # noqa: E402

EF_SEARCH = (16, 32, 64, 128, 256)

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


def _p50_ms(search, queries: np.ndarray) -> tuple[list[np.ndarray], float]:  # type: ignore[no-untyped-def]
    found, times = [], []
    for q in queries:
        began = time.perf_counter()
        found.append(search(q[None, :])[1][0])
        times.append((time.perf_counter() - began) * 1000)
    return found, float(np.median(times))


def recall_rows(part: str, vectors: VectorIndex, queries: np.ndarray) -> list[dict[str, object]]:
    """Recall@10 of HNSW over ``vectors`` against exact search, per ef_search.

    Uses the index itself when the size rule made it HNSW, else an HNSW copy of
    the same vectors, so the curve is measured either way.
    """
    ids = vectors.ids()
    data = vectors.vectors(ids.tolist()).astype(np.float32)
    exact = VectorIndex.empty(data.shape[1])
    exact.add(ids.tolist(), data)
    if vectors.approximate:
        approx = vectors
    else:
        approx = VectorIndex.for_size(data.shape[1], len(data), flat_limit=0)
        approx.add(ids.tolist(), data)
    truth, exact_ms = _p50_ms(lambda q: exact.search(q, 10), queries)
    rows: list[dict[str, object]] = []
    for ef in EF_SEARCH:
        approx.ef_search = ef
        found, ms = _p50_ms(lambda q: approx.search(q, 10), queries)
        recall = float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))
        rows.append({"part": part, "size": len(ids), "ef_search": ef, "recall": recall, "ms": ms, "exact_ms": exact_ms})
        print(f"{part}: ef_search={ef} recall@10={recall:.3f} p50={ms:.2f} ms (exact {exact_ms:.2f} ms)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="documents to index (0 = all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    dist = fetch(args.out)
    files = sorted(p for pattern in PATTERNS for p in dist.glob(pattern))
    docs = load_paths(files)
    available = len(docs)
    if args.limit and args.limit < len(docs):
        step = len(docs) / args.limit
        docs = [docs[int(i * step)] for i in range(args.limit)]
    settings = get_settings()
    embedder = load_configured_embedder(settings)
    index_dir = (args.out / f"poetry-index-{len(docs)}").resolve()
    from service.cli.app import Bars

    embedder.encode_documents(["预热"])  # the document model loads outside the build's clock
    began = time.perf_counter()
    report = build_index(docs, index_dir, embedder, progress=Bars(True))
    build_s = time.perf_counter() - began
    build_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    searcher = Searcher.load(index_dir, embedder)
    parts = searcher.vectors._passages, searcher.vectors._sentences  # the benchmark inspects them

    # Recall queries: the benchmark's own questions plus lines of indexed poems, asked as queries.
    rng = np.random.default_rng(0)
    lines = []
    for i in rng.choice(len(docs), 400, replace=False):
        text = docs[i].text
        lines += [normalize(text[a:b]) for a, b in sentences(text, 0, len(text), 250)[:1]]
    recall_queries = embedder.encode_queries([normalize(q) for q in QUERIES] + lines[:192])
    rows = recall_rows("passages", parts[0], recall_queries) + recall_rows("sentences", parts[1], recall_queries)

    facts = {
        "command": " ".join(["benchmarks/poetry.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "index_dir": str(index_dir),
        "available": available,
        "documents": report.documents,
        "passages": report.passages,
        "sentence_vectors": len(parts[1]),
        "embedded_texts": report.embedded_passages + len(parts[1]),
        "build_s": build_s,
        "build_peak_mb": build_peak_mb,
        "size_mb": folder_size(index_dir) / 1e6,
        "vector_index": searcher.manifest.vector_index,
        "queries": QUERIES,
        "recall_queries": len(recall_queries),
        "recall": rows,
    }
    POETRY_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    POETRY_RESULTS.write_text(json.dumps(facts, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in facts.items() if k != "recall"}, ensure_ascii=False, indent=2))
    print(f"written to {POETRY_RESULTS}; `make bench` adds the load test")


if __name__ == "__main__":
    main()

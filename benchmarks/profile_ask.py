"""Where an ask's time goes, stage by stage (issue 13).

Wraps the functions an ask calls (search, document reads, normalization, the
model's encoders, stored-vector reads) with timers, runs the benchmark questions
through ``index.retrieval.answer.ask`` in process, and prints the mean
milliseconds per ask of each stage. ``--repo`` points at another checkout (an
older commit, for the "before" table); both must find the same index.

    .venv/bin/python benchmarks/profile_ask.py [--repo /path/to/checkout] [--reps 5]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from loadgen import QUERIES

spent: dict[str, float] = defaultdict(float)


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` with a version that adds its own time (not nested timed calls') to ``label``."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        inner_before = spent["__inner__"]
        try:
            return original(*args, **kwargs)
        finally:
            total = time.perf_counter() - began
            nested = spent["__inner__"] - inner_before
            spent[label] += total - nested
            spent["__inner__"] = inner_before + total

    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    setattr(owner, name, staticmethod(wrapper) if static else wrapper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo))
    from index import build_index, get_settings, load_configured_embedder, load_paths
    from index.retrieval import answer, search
    from index.storage.dense import DenseIndex

    settings = get_settings()
    embedder = load_configured_embedder(settings)
    seeds = args.repo / "seeds"
    slug = hashlib.sha256(str(seeds.resolve()).encode()).hexdigest()[:12]
    target = settings.cache_dir / "eval-index" / f"profile-{slug}"
    build_index(load_paths([seeds]), target, embedder)
    searcher = search.Searcher.load(target, embedder)
    answer.ask(searcher, QUERIES[0])  # loads whatever the first ask loads
    embedder.encode_documents(["预热"])  # and the document model, so neither path pays for loading it

    stages: list[tuple[Any, str, str]] = [
        (search.Searcher, "_lexical", "BM25"),
        (DenseIndex, "candidates", "FAISS (passages + sentences)"),
        (search.Searcher, "evidence", "documents' text and sentence vectors (evidence)"),
        (answer, "extract_answer", "answer scoring (rest)"),
        (answer, "required_terms", "jieba (required terms)"),
        (answer, "normalize", "normalize (answer step)"),
    ]
    for cls_name in ("QueryOnlyEmbedder", "OnnxEmbedder", "SentenceTransformerEmbedder"):
        for module_name in ("index.models.load", "index.models.onnx", "index.models.transformer"):
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, cls_name):
                cls = getattr(module, cls_name)
                if cls_name != "QueryOnlyEmbedder":
                    stages.append((cls, "encode_queries", "encode query (int8 ONNX)"))
                    stages.append((cls, "encode_documents", f"encode sentences ({cls_name})"))
    if hasattr(search.Searcher, "searched"):
        stages.append((search.Searcher, "searched", "search (rest)"))
    else:
        stages.append((search.Searcher, "search", "search (rest)"))
    if hasattr(answer, "tagged"):
        stages.append((answer, "tagged", "jieba (required terms)"))
    if hasattr(search.DenseIndex, "sentence_vectors"):
        stages.append((search.DenseIndex, "sentence_vectors", "stored sentence vectors"))
    stages.append((answer, "ask", "ask (rest)"))
    for owner, name, label in stages:
        if hasattr(owner, name):
            timed(owner, name, label)

    walls: list[float] = []
    spent.clear()
    n = 0
    for _ in range(args.reps):
        for q in QUERIES:
            began = time.perf_counter()
            answer.ask(searcher, q)
            walls.append((time.perf_counter() - began) * 1000)
            n += 1
    spent.pop("__inner__", None)
    print(f"{args.repo}: {n} asks, wall p50 {statistics.median(walls):.1f} ms, mean {statistics.mean(walls):.1f} ms")
    print("| stage | ms per ask |")
    print("|---|---|")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"| {label} | {seconds * 1000 / n:.2f} |")


if __name__ == "__main__":
    main()

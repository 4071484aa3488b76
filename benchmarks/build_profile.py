"""Where an index build spends its time, stage by stage (issue 29's first step towards txtai's speed).

Builds a folder (default: the seeds) into a temporary index with the default model, the model
loaded before the clock starts, under cProfile, and sums the time of the functions that make each
stage: reading files, cleaning and chunking (``clean.parse``, ``chunk``), normalizing (OpenCC),
tokenizing (``FastTokenizer.batch``), the ONNX forward passes (passages and the sentence vectors
apart), FAISS, BM25 and SQLite. Stages overlap where one calls another: each row is a function's
cumulative time, so a parent includes its children.

    .venv/bin/python benchmarks/build_profile.py [--docs FOLDER]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (stage, file suffix, function name) whose cumulative time is the stage's.
STAGES = [
    ("read files (ingest)", "text/ingest.py", "read_paths"),
    ("clean (parse the layout)", "text/clean.py", "parse"),
    ("chunk", "text/chunk.py", "chunk"),
    ("normalize (OpenCC)", "text/normalize.py", "normalize"),
    ("embed (all vectors)", "writing/embedding.py", "embed"),
    ("  tokenize", "models/onnx.py", "batch"),
    ("  ONNX forward passes", "models/onnx.py", "_run"),
    ("write the generation (FAISS, BM25, SQLite)", "writing/build.py", "_write"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "seeds")
    args = parser.parse_args()
    from index import build_index, get_settings, load_configured_embedder, read_paths

    embedder = load_configured_embedder(get_settings())
    embedder.encode_documents(["預熱"])  # the document model loaded before the clock starts
    with tempfile.TemporaryDirectory() as scratch:
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        loaded = read_paths([args.docs])
        report = build_index(loaded.documents, Path(scratch) / "index", embedder)
        profile.disable()
        wall = time.perf_counter() - began
    stats = pstats.Stats(profile)
    rows = []
    for stage, suffix, name in STAGES:
        seconds = sum(
            values[3]
            for (filename, _, function), values in stats.stats.items()  # type: ignore[attr-defined]
            if filename.endswith(suffix) and function == name
        )
        rows.append((stage, seconds))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    passages = getattr(report, "passages", None)
    print(f"\nBuild of {args.docs} ({len(loaded.documents)} documents, {passages} passages), {machine}:")
    print(f"{wall:.2f} s wall under cProfile\n")
    print("| stage (cumulative) | s | share of wall |")
    print("|---|---|---|")
    for stage, seconds in rows:
        print(f"| {stage} | {seconds:.2f} | {seconds / wall:.0%} |")
    top = pstats.Stats(profile)
    top.sort_stats("tottime")
    print("\nTop functions by own time:\n")
    top.print_stats(12)


if __name__ == "__main__":
    main()

"""zhsearch's index build beside txtai's on the same texts (issue 29: ``≤ 1.0×`` txtai's time).

Both run in this process with the same converted e5-small folder, each model loaded (and one text
encoded) before its clock starts, on the same documents:

- zhsearch: ``build_index`` over the documents (cleaning, chunking, the passage and sentence
  vectors, FAISS, BM25, SQLite): what ``zhsearch build`` does after loading the model.
- txtai: ``Embeddings.index`` over the passages zhsearch cut from the same documents (each
  passage's embedded text: its section and its text), one vector each, with e5's ``passage: ``
  prompt, dense only (txtai's defaults otherwise: sentence-transformers on torch, FAISS).

txtai is not a dependency of zhsearch: without it installed the benchmark reports zhsearch alone.
The corpus is the Python FAQ zh-cn from ``../shared/benchmarks`` when it is there, else the seeds.

    .venv/bin/python benchmarks/peer.py [--docs PATH ...] [--runs 3]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FAQ = ROOT.parent / "shared" / "benchmarks" / "faq" / "python-faq-zh-cn" / "corpus.jsonl"
OUT = ROOT / "benchmarks" / "out" / "peer.json"


def _zhsearch_build(documents: list, embedder: object) -> tuple[float, dict[str, int]]:
    from index import build_index

    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        report = build_index(documents, Path(scratch) / "index", embedder)
        seconds = time.perf_counter() - began
    return seconds, {"passages": int(report.passages)}


def _passage_texts(documents: list, embedder: object) -> tuple[list[str], int]:
    """The texts zhsearch embeds per passage (section and text, normalized), and its sentence count."""
    from index.storage.dense import passage_text, sentence_texts
    from index.text.chunk import ChunkConfig
    from index.writing.prepare import prepare

    texts: list[str] = []
    sentences = 0
    for doc in documents:
        for p in prepare(doc, ChunkConfig(), embedder, 0).passages:  # type: ignore[arg-type]
            texts.append(passage_text(p.section, p.text))
            sentences += len(sentence_texts(p.text))
    return texts, sentences


def _txtai(folder: Path) -> object | None:
    try:
        from txtai import Embeddings
    except ImportError:
        return None
    embeddings = Embeddings(
        path=str(folder),
        method="sentence-transformers",
        content=False,
        backend="faiss",
        instructions={"query": "query: ", "data": "passage: "},
    )
    embeddings.index(["預熱"])  # loads the model before the clock
    return embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, nargs="*", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from index import get_settings, load_configured_embedder, read_paths
    from index.models.cache import DEFAULT_MODEL_NAME

    paths = args.docs or ([FAQ] if FAQ.exists() else [ROOT / "seeds"])
    settings = get_settings()
    documents = read_paths(paths).documents
    embedder = load_configured_embedder(settings)
    embedder.encode_documents(["預熱"])  # the document model loaded before the clock
    texts, sentences = _passage_texts(documents, embedder)
    chars = sum(len(t) for t in texts)
    print(f"{len(documents)} documents from {', '.join(str(p) for p in paths)}: {len(texts)} passages")
    print(f"({chars} characters), {sentences} sentence vectors besides the passage vectors")

    ours = []
    for run in range(args.runs):
        seconds, report = _zhsearch_build(documents, embedder)
        ours.append(seconds)
        print(f"  zhsearch build, run {run + 1}: {seconds:.2f} s ({report['passages']} passages)", flush=True)
    theirs: list[float] = []
    peer = _txtai(settings.cache_dir / "models" / DEFAULT_MODEL_NAME)
    if peer is None:
        print("  txtai is not installed (pip install txtai): zhsearch alone")
    else:
        for run in range(args.runs):
            began = time.perf_counter()
            peer.index(texts)  # type: ignore[attr-defined]
            theirs.append(time.perf_counter() - began)
            print(f"  txtai index, run {run + 1}: {theirs[-1]:.2f} s ({len(texts)} vectors)", flush=True)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {
        "machine": machine,
        "corpus": [str(p) for p in paths],
        "documents": len(documents),
        "passages": len(texts),
        "characters": chars,
        "sentence_vectors": sentences,
        "zhsearch_seconds": round(statistics.median(ours), 3),
        "txtai_seconds": round(statistics.median(theirs), 3) if theirs else None,
    }
    if theirs:
        result["ratio"] = round(result["zhsearch_seconds"] / result["txtai_seconds"], 3)
    print(f"\n{machine}, median of {args.runs} runs each:\n")
    print("| | vectors | seconds | passages/s |")
    print("|---|---|---|---|")
    print(
        f"| zhsearch build | {len(texts)} + {sentences} sentences | {result['zhsearch_seconds']:.2f} |"
        f" {len(texts) / result['zhsearch_seconds']:.1f} |"
    )
    if theirs:
        print(
            f"| txtai {_version()} index | {len(texts)} | {result['txtai_seconds']:.2f} |"
            f" {len(texts) / result['txtai_seconds']:.1f} |"
        )
        print(f"\nzhsearch / txtai: {result['ratio']:.2f}×")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _version() -> str:
    from importlib.metadata import version

    return version("txtai")


if __name__ == "__main__":
    main()

"""Does ``index.models.unigram`` tokenize exactly as ``tokenizers`` does? Every text, compared.

Texts: the shipped seeds (paragraphs and sentences) and, when ``../shared/benchmarks`` holds them,
every question and paragraph of DRCD, CMRC 2018 (dev and trial) and the Python FAQ sets. Each is
compared alone (ids and offsets, cut at the model's 512 tokens), and every question with its
paragraph as a pair cut longest-first at 256, 128 and 40 tokens (ids, offsets, sequence ids: the span
reader's input). Prints the counts and the time each tokenizer took; exits 1 on any difference.

    .venv/bin/python benchmarks/tokenizer_check.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "benchmarks"
PAIR_LIMITS = (256, 128, 40)


def texts_and_pairs() -> tuple[list[str], list[tuple[str, str]]]:
    texts: list[str] = []
    pairs: list[tuple[str, str]] = []
    for path in sorted((ROOT / "seeds").rglob("*")):
        if path.is_file() and path.suffix in {".txt", ".md", ".jsonl", ".tsv"}:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    texts.append(line)
    for name in ("DRCD_dev.json", "cmrc2018_dev.json", "cmrc2018_trial.json"):
        path = SHARED / "reading-comprehension" / name
        if not path.exists():
            continue
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                for qa in paragraph["qas"]:
                    texts.append(qa["question"])
                    pairs.append((qa["question"], paragraph["context"][:300]))
    for folder in sorted((SHARED / "faq").glob("*")) if (SHARED / "faq").exists() else []:
        for name in ("corpus.jsonl", "queries.jsonl"):
            if (folder / name).exists():
                for line in (folder / name).read_text(encoding="utf-8").splitlines():
                    row = json.loads(line)
                    texts.append(" ".join(str(row.get(key) or "") for key in ("title", "text")).strip())
    return texts, pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="compare at most this many texts and pairs")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from index import get_settings
    from index.models.cache import DEFAULT_MODEL_NAME
    from index.models.onnx import built_tokenizer_file
    from index.models.unigram import UnigramTokenizer

    built = built_tokenizer_file(get_settings().cache_dir / "models" / DEFAULT_MODEL_NAME)
    reference = Tokenizer.from_file(str(built))
    mine = UnigramTokenizer.load(built)
    assert mine is not None, f"{built} is not a Unigram pipeline"
    texts, pairs = texts_and_pairs()
    if args.limit:
        texts, pairs = texts[: args.limit], pairs[: args.limit]
    differ = 0

    reference.enable_truncation(max_length=512, strategy="longest_first")
    began = time.perf_counter()
    expected = reference.encode_batch(texts)
    rust = time.perf_counter() - began
    began = time.perf_counter()
    found = [mine.encode(text, 512) for text in texts]
    ours = time.perf_counter() - began
    began = time.perf_counter()
    bare = [mine.ids(text, 512) for text in texts]
    ids_only = time.perf_counter() - began
    for text, want, got, ids in zip(texts, expected, found, bare, strict=True):
        if list(want.ids) != got.ids or [tuple(o) for o in want.offsets] != got.offsets or ids != got.ids:
            differ += 1
            if differ <= 5:
                print(f"differs: {text[:60]!r}\n  tokenizers {want.ids[:20]}\n  unigram    {got.ids[:20]}")
    print(
        f"{len(texts)} texts ({sum(map(len, texts))} characters): tokenizers {rust:.2f} s (2 threads),"
        f" unigram {ours:.2f} s with offsets, {ids_only:.2f} s ids alone"
    )
    for limit in PAIR_LIMITS:
        reference.enable_truncation(max_length=limit, strategy="longest_first")
        expected = reference.encode_batch(pairs)
        for pair, want in zip(pairs, expected, strict=True):
            got = mine.encode_pair(pair[0], pair[1], limit)
            same = (
                list(want.ids) == got.ids
                and [tuple(o) for o in want.offsets] == got.offsets
                and list(want.sequence_ids) == got.sequence_ids
            )
            if not same:
                differ += 1
                if differ <= 5:
                    print(f"pair differs at {limit}: {pair[0][:30]!r}\n  {want.ids[:20]}\n  {got.ids[:20]}")
    print(f"{len(pairs)} question-paragraph pairs at {', '.join(map(str, PAIR_LIMITS))} tokens")
    print(f"differences: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

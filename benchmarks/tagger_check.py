"""Does ``index.retrieval.tagger`` (jieba's dictionary read from SQLite) tag exactly as stock jieba does?

Texts: the sentences of ``tokenizer_check.py``'s texts (the seeds and, when ``../shared/benchmarks``
holds them, DRCD, CMRC 2018 and the Python FAQ sets: questions and paragraphs), as written and
folded to simplified script, as the answer step tags them; every distinct one up to ``--limit``
(jieba's HMM tags about 2,000 characters a second here, so all 1.7M characters take half an hour).
Each is tagged by the SQLite-backed tagger in a fresh process (how a cold command meets it) and by a
stock ``jieba.posseg.POSTokenizer``; words and flags must be equal. Prints the counts, the load time
and memory of each; exits 1 on any difference.

    .venv/bin/python benchmarks/tagger_check.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tokenizer_check import texts_and_pairs  # noqa: E402

TAG = """
import json, resource, sys, time
began = time.perf_counter()
from index.retrieval import tagger
tagger.configure({cache_dir!r})
first = tagger.tag(sys.argv[1])
loaded = time.perf_counter() - began
texts = json.load(open({texts!r}, encoding="utf-8"))
began = time.perf_counter()
tags = [tagger.tag(text) for text in texts]
print(json.dumps({{"load": loaded, "tag": time.perf_counter() - began, "tags": tags,
    "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=6000, help="compare at most this many sentences (0: all)")
    args = parser.parse_args()

    import re
    import resource
    import tempfile

    from index import get_settings
    from index.text.normalize import normalize

    written = dict.fromkeys(s.strip() for t in texts_and_pairs()[0] for s in re.split(r"(?<=[。！？!?\n])", t))
    written.pop("", None)
    sentences = list(written)
    if args.limit:  # an even spread over the sets, not the first ones only
        sentences = sentences[:: max(1, len(sentences) // (args.limit // 2))][: args.limit // 2]
    texts = list(dict.fromkeys(sentences + [normalize(s) for s in sentences]))
    cache_dir = str(get_settings().cache_dir)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as f:
        json.dump(texts, f, ensure_ascii=False)
    code = TAG.format(cache_dir=cache_dir, texts=f.name)
    out = subprocess.run([sys.executable, "-c", code, "黄浦区"], capture_output=True, text=True, check=True, cwd=ROOT)
    Path(f.name).unlink()
    lazy = json.loads(out.stdout)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)
    stock = jieba.posseg.POSTokenizer(jieba.Tokenizer())
    stock.lcut("黄浦区")
    loaded = time.perf_counter() - began
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    began = time.perf_counter()
    expected = [[[w.word, w.flag] for w in stock.cut(text)] for text in texts]
    tagging = time.perf_counter() - began

    differ = [i for i, (a, b) in enumerate(zip(expected, lazy["tags"], strict=True)) if a != b]
    words = sum(len(tags) for tags in expected)
    print(f"{len(texts)} texts, {words} words: {len(differ)} differ")
    for i in differ[:5]:
        print(f"  {texts[i][:60]!r}\n    stock {expected[i][:12]}\n    sqlite {lazy['tags'][i][:12]}")
    print(f"stock jieba:  load {loaded:.2f} s (+{grown:.0f} MB), tag {tagging:.2f} s")
    print(f"SQLite-backed: load {lazy['load']:.2f} s (process peak {lazy['rss']:.0f} MB), tag {lazy['tag']:.2f} s")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

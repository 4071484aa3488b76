"""Ablations of the answer step on seeds/eval and the public sets' dev halves (issue 12).

Searches every question once (hybrid, top 5, as ``/v1/ask`` does), caches the
sentence vectors, then re-runs ``extract_answer`` under each variant. Prints, per
set: answer contains a gold string, CMRC 2018 exact match and character F1, and
abstentions (seeds/eval: answerable left unanswered, unanswerable refused).

    .venv/bin/python benchmarks/tune_answers.py [--per-set 300] [--split dev]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import build_index, get_settings, load_configured_embedder, load_paths  # noqa: E402
from index.evaluation.answer_metrics import exact_match, f1  # noqa: E402
from index.evaluation.evaluate import EvalQuery, is_relevant, load_eval_set  # noqa: E402
from index.evaluation.squad import load_squad  # noqa: E402
from index.retrieval import answer  # noqa: E402
from index.retrieval.question import kind_of  # noqa: E402
from index.retrieval.search import Searcher  # noqa: E402
from index.text.normalize import normalize  # noqa: E402


class CachedEmbedder:
    """The real embedder, remembering every vector (variants re-embed the same sentences)."""

    def __init__(self, embedder: Any) -> None:
        self.inner = embedder
        self.dim = embedder.dim
        self.docs: dict[str, np.ndarray] = {}
        self.queries: dict[str, np.ndarray] = {}

    def _cached(self, store: dict[str, np.ndarray], texts: list[str], encode: Callable[..., np.ndarray]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in store]
        if missing:
            store.update(zip(missing, encode(missing), strict=True))
        return np.stack([store[t] for t in texts])

    def encode_documents(self, texts: list[str], **_: Any) -> np.ndarray:
        return self._cached(self.docs, texts, self.inner.encode_documents)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._cached(self.queries, texts, self.inner.encode_queries)


_OLD_QUANTITY = re.compile(
    r"多少|几|多大|多高|多长|多久|比例|比重|占比|率|百分|数量|规模|金额|总额|总量|增长|增幅|下降"
)


@contextmanager
def variant(*, kinds: str, weight: float, headings: bool, title: bool = False) -> Iterator[None]:
    saved = answer.kind_of, answer.carries, answer.KIND_WEIGHTS, answer.is_heading, answer.credit_titles
    if not title and kinds != "shipped":
        answer.credit_titles = lambda candidates, grams, wanted: grams  # type: ignore[assignment]
    every = ("quantity", "cause", "time", "person", "place")
    if kinds != "shipped":
        answer.KIND_WEIGHTS = dict.fromkeys(every, weight)
    if kinds == "quantity only (before)":
        answer.kind_of = lambda q: "quantity" if _OLD_QUANTITY.search(q) else None  # type: ignore[assignment]
        answer.carries = lambda kind, s, q: bool(re.search(r"\d", s))  # type: ignore[assignment]
    elif kinds.startswith("only "):
        chosen = set(kinds[5:].split("+"))
        answer.kind_of = lambda q: k if (k := kind_of(q)) in chosen else None  # type: ignore[assignment]
    if not headings:
        answer.is_heading = lambda *args: False  # type: ignore[assignment]
    try:
        yield
    finally:
        answer.kind_of, answer.carries, answer.KIND_WEIGHTS, answer.is_heading, answer.credit_titles = saved


VARIANTS = [
    {"kinds": "quantity only (before)", "weight": 0.05, "headings": False},
    {"kinds": "quantity only (before)", "weight": 0.05, "headings": True},
    {"kinds": "five kinds", "weight": 0.05, "headings": False},
    {"kinds": "five kinds", "weight": 0.05, "headings": True},
    {"kinds": "five kinds", "weight": 0.10, "headings": True},
    {"kinds": "five kinds", "weight": 0.15, "headings": True},
    {"kinds": "five kinds", "weight": 0.25, "headings": True},
    *(
        {"kinds": f"only {k}", "weight": 0.05, "headings": True}
        for k in ("quantity", "cause", "time", "person", "place")
    ),
    {"kinds": "only quantity+person", "weight": 0.05, "headings": True},
    {"kinds": "quantity only (before)", "weight": 0.05, "headings": True, "title": True},
    {"kinds": "only quantity", "weight": 0.05, "headings": True, "title": True},
    {"kinds": "only quantity+person", "weight": 0.05, "headings": True, "title": True},
    {"kinds": "only quantity+person+cause", "weight": 0.05, "headings": True, "title": True},
    {"kinds": "five kinds", "weight": 0.05, "headings": True, "title": True},
    {"kinds": "shipped", "weight": 0.05, "headings": True, "title": True},
]
FINAL = [VARIANTS[0], VARIANTS[-1]]  # before issue 12, and what answer.py ships


def _pick(queries: list[EvalQuery], n: int) -> list[EvalQuery]:
    ranked = sorted(queries, key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())
    return ranked[:n] if n else ranked


def prepare(searcher: Searcher, queries: list[EvalQuery]) -> list[tuple[EvalQuery, list[Any], dict[str, str]]]:
    out = []
    texts: dict[str, str] = {}
    for q in queries:
        hits = searcher.search(q.text, 5).hits
        for h in hits[: answer.TOP_PASSAGES]:
            if h.doc_id not in texts:
                texts[h.doc_id] = normalize(searcher.document(h.doc_id).text)
        out.append((q, hits, {h.doc_id: texts[h.doc_id] for h in hits[: answer.TOP_PASSAGES]}))
    return out


def judge(
    prepared: list[tuple[EvalQuery, list[Any], dict[str, str]]], embedder: CachedEmbedder, by_kind: dict[str, list[int]]
) -> dict[str, float]:
    contains = em = f = abstained = refused = answerable = unanswerable = 0.0
    for q, hits, docs in prepared:
        got = answer.extract_answer(q.text, hits, embedder, documents=docs)  # type: ignore[arg-type]
        if q.answers:
            answerable += 1
            kind = by_kind.setdefault(str(kind_of(normalize(q.text))), [0, 0])
            kind[1] += 1
            if got is None:
                abstained += 1
                continue
            right = is_relevant(normalize(got.text), [normalize(a) for a in q.answers])
            contains += right
            kind[0] += right
            em += exact_match(got.text, q.answers)
            f += f1(got.text, q.answers)
        else:
            unanswerable += 1
            refused += got is None
    n = answerable or 1
    out = {"contains": contains / n, "em": em / n, "f1": f / n, "abstain": abstained / n}
    if unanswerable:
        out["refused"] = refused / unanswerable
    return out


def diff(sets: dict[str, Any], cached: CachedEmbedder, a: dict[str, Any], b: dict[str, Any]) -> None:
    """The questions on which two variants pick different answers, with the gold answer."""
    for name, prepared in sets.items():
        for q, hits, docs in prepared:
            got = []
            for v in (a, b):
                with variant(**v):
                    found = answer.extract_answer(q.text, hits, cached, documents=docs)  # type: ignore[arg-type]
                got.append(found.text if found else None)
            if got[0] != got[1]:
                print(
                    f"{name} {kind_of(normalize(q.text))} {q.text} gold={q.answers[:1]}\n  A: {got[0]}\n  B: {got[1]}"
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "reading-comprehension"
    )
    parser.add_argument("--per-set", type=int, default=300, help="public-set questions per set (0: all of the half)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--only", nargs="*", help="only the variants whose kinds are named here")
    parser.add_argument("--final", action="store_true", help="only before and shipped (for the test half)")
    parser.add_argument("--vectors", type=Path, help="keep the sentence vectors in this .pkl between runs")
    parser.add_argument("--diff", nargs=2, type=int, metavar=("A", "B"), help="print questions variants A, B differ on")
    args = parser.parse_args()
    settings = get_settings()
    embedder = load_configured_embedder(settings)
    cached = CachedEmbedder(embedder)
    if args.vectors and args.vectors.exists():
        with args.vectors.open("rb") as f:
            cached.docs, cached.queries = pickle.load(f)
    began = time.perf_counter()
    sets: dict[str, list[tuple[EvalQuery, list[Any], dict[str, str]]]] = {}

    seeds = load_eval_set(ROOT / "seeds/eval")
    slug = hashlib.sha256(str((ROOT / "seeds").resolve()).encode()).hexdigest()[:12]
    target = settings.cache_dir / "eval-index" / f"seeds-{slug}"
    build_index(load_paths([ROOT / "seeds"]), target, embedder)
    searcher = Searcher.load(target, embedder)
    sets["seeds/eval"] = prepare(searcher, [*seeds.queries, *seeds.unanswerable])

    files = [args.benchmarks / "DRCD_dev.json", args.benchmarks / "cmrc2018_dev.json"]
    if all(f.exists() for f in files):
        pooled = load_squad(files, split=args.split)
        name = "squad-" + hashlib.sha256("\n".join(str(f.resolve()) for f in files).encode()).hexdigest()[:12]
        target = settings.cache_dir / "eval-index" / name
        build_index(pooled.documents, target, embedder)
        searcher = Searcher.load(target, embedder)
        for stem, label in (("DRCD_dev", "DRCD"), ("cmrc2018_dev", "CMRC")):
            qs = _pick([q for q in pooled.eval_set.queries if q.fields.get("set") == stem], args.per_set)
            sets[f"{label} {args.split}"] = prepare(searcher, qs)
            print(f"{label}: {len(qs)} questions searched ({time.perf_counter() - began:.0f}s)", file=sys.stderr)

    print(
        "| kinds | weight | skip headings | "
        + " | ".join(f"{s} contains / EM / F1" for s in sets)
        + " | seeds abstain / refused |"
    )
    print("|---" * (len(sets) + 5) + "|")
    if args.diff:
        diff(sets, cached, VARIANTS[args.diff[0]], VARIANTS[args.diff[1]])
        return
    kinds_seen: dict[str, dict[str, dict[str, list[int]]]] = {}
    for v in FINAL if args.final else VARIANTS:
        if args.only and not (v.get("title") or v["kinds"] in args.only):
            continue
        label = f"{v['kinds']} {v['weight']} {v['headings']} title={v.get('title', False)}"
        with variant(**v):  # type: ignore[arg-type]
            results = {
                name: judge(prepared, cached, kinds_seen.setdefault(label, {}).setdefault(name, {}))
                for name, prepared in sets.items()
            }
        cells = [f"{r['contains']:.3f} / {r['em']:.3f} / {r['f1']:.3f}" for r in results.values()]
        seeds_r = results["seeds/eval"]
        print(
            f"| {v['kinds']} | {v['weight']} | {v['headings']} | "
            + " | ".join(cells)
            + f" | {seeds_r['abstain']:.3f} / {seeds_r.get('refused', 0):.3f} |",
            flush=True,
        )
    if args.vectors:
        with args.vectors.open("wb") as f:
            pickle.dump((cached.docs, cached.queries), f)
    print("\nanswer contains a gold string, by the kind the question asks for (right / questions):\n")
    for label, per_set in kinds_seen.items():
        print(
            label
            + ": "
            + "; ".join(
                f"{name} " + " ".join(f"{k}={r}/{n}" for k, (r, n) in sorted(c.items())) for name, c in per_set.items()
            )
        )


if __name__ == "__main__":
    main()

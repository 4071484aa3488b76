"""Fit the answer score's calibration and the abstain threshold on the public dev halves (issue 26).

Asks dev-half questions of DRCD 1.3 and CMRC 2018 (as written, in simplified and in Taiwan
traditional script, a sample of each) against the pooled index of every paragraph, and the same
questions again with their own paragraph left out (unanswerable). Every window the span reader
reads is recorded with its features (``retrieval.answer.read_span``) and labelled right when its
span matches a gold answer (CMRC's character F1 >= 0.5; never for an unanswerable question). A
logistic regression over ``FEATURES`` gives the probability that a span is right; the threshold
is the highest probability at which at most ``--abstain-answerable`` of the answerable dev
questions go unanswered. Writes ``index/models/data/answer-calibration.json``; the test halves are
never read here (``make quality`` reports on them).

Run: ``.venv/bin/python benchmarks/calibrate_answers.py`` (about 10 minutes here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import get_settings  # noqa: E402
from index.evaluation.answer_metrics import f1  # noqa: E402
from index.evaluation.evaluate import sample  # noqa: E402
from index.evaluation.squad import load_squad  # noqa: E402
from index.opening import load_answering, open_configured  # noqa: E402
from index.retrieval.answer import ask  # noqa: E402
from index.retrieval.answering import Answering  # noqa: E402
from index.retrieval.calibration import DATA, Calibration, fit_logistic  # noqa: E402
from index.retrieval.snapshot import Filters  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks" / "reading-comprehension"
FILES = [SHARED / "DRCD_dev.json", SHARED / "cmrc2018_dev.json"]
FEATURES = ("margin", "logprob", "sentence", "coverage", "cosine", "first")
#: A span this probable is taken without reading the next window (docs/decisions.md, "Answer spans":
#: on the test halves the same EM and F1 as 0.9 to three decimals).
SURE = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-script", type=int, default=500, help="dev questions per query script")
    parser.add_argument("--abstain-answerable", type=float, default=0.05)
    parser.add_argument("--features", default=",".join(FEATURES), help="which of the window's features to fit on")
    parser.add_argument("--rows", type=Path, help="reuse (or keep) the recorded windows in this JSON file")
    args = parser.parse_args()
    settings = get_settings()
    answering = load_answering(settings)
    if answering.reader is None:
        sys.exit("the span reader did not load (see the log); run `zhsearch model` and train_reader.py first")
    from index.models import load_configured_embedder
    from service.cli.evaluate import _index_of_documents

    embedder = load_configured_embedder(settings)
    features = tuple(args.features.split(","))
    rows: list[tuple[str, bool, dict[str, float]]] = []  # question key, right, features
    if args.rows and args.rows.exists():
        rows = [(k, r, f) for k, r, f in json.loads(args.rows.read_text(encoding="utf-8"))]
    for script in () if rows else ("as-is", "t2s", "s2twp"):
        pooled = load_squad(FILES, query_script=script, split="dev")
        where = _index_of_documents(FILES, pooled.documents, embedder, True, None)
        index = open_configured(settings, index_dir=where, embedder=embedder)
        every = frozenset(index.snapshot.documents)  # type: ignore[attr-defined]
        answerable = sample([q for q in pooled.eval_set.queries if q.answers], args.per_script)
        chosen = {q.id for q in answerable}
        unanswerable = [q for q in pooled.eval_set.unanswerable if q.id.removesuffix("#without") in chosen]
        began = time.time()
        for n, query in enumerate([*answerable, *unanswerable], start=1):
            golds = query.answers
            key = f"{script}:{query.id}"

            def observe(span: str, features: dict[str, float], key: str = key, golds=golds) -> None:
                rows.append((key, bool(golds) and f1(span, golds) >= 0.5, dict(features)))

            index.answering = Answering(answering.reader, answering.calibration, 0.0, observe)
            filters = None
            if "without" in query.fields:
                filters = Filters(doc_ids=every - {str(query.fields["without"])})
            ask(index, query.text, 5, filters=filters)
            if n % 200 == 0:
                print(f"{script}: {n}/{len(answerable) + len(unanswerable)} · {time.time() - began:.0f} s", flush=True)
        index.close()
    if args.rows:
        args.rows.write_text(json.dumps(rows), encoding="utf-8")
    x = np.asarray([[f[name] for name in features] for _, _, f in rows])
    y = np.asarray([right for _, right, _ in rows], float)
    weights, bias = fit_logistic(x, y)
    calibration = Calibration(features, tuple(float(w) for w in weights), bias, 0.5, "")
    # Per question: the most probable window is the answer; answerable = has gold answers.
    best: dict[str, tuple[float, bool, bool]] = {}
    for (key, right, _), row in zip(rows, x, strict=True):
        p = calibration.probability(dict(zip(features, row, strict=True)))
        answerable = not key.endswith("#without")
        if key not in best or p > best[key][0]:
            best[key] = (p, right, answerable)
    answerable_p = np.asarray([p for p, _, a in best.values() if a])
    unanswerable_p = np.asarray([p for p, _, a in best.values() if not a])
    candidates = np.unique(np.concatenate([answerable_p, unanswerable_p]))
    ok = [t for t in candidates if (answerable_p < t).mean() <= args.abstain_answerable]
    threshold = float(max(ok)) if ok else 0.0
    # How to set the threshold: what each choice abstains on, on the dev halves.
    curve = [
        {
            "threshold": t,
            "abstain_answerable": round(float((answerable_p < t).mean()), 4),
            "abstain_unanswerable": round(float((unanswerable_p < t).mean()), 4),
        }
        for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    ]
    buckets = np.linspace(0, 1, 11)
    chosen_p = np.asarray([p for p, _, _ in best.values()])
    chosen_right = np.asarray([r for _, r, _ in best.values()], float)
    reliability = []
    for lo, hi in zip(buckets[:-1], buckets[1:], strict=True):
        inside = (chosen_p >= lo) & (chosen_p < hi if hi < 1 else chosen_p <= hi)
        if inside.any():
            reliability.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "answers": int(inside.sum()),
                    "right": round(float(chosen_right[inside].mean()), 3),
                }
            )
    fitted = Calibration(
        features,
        tuple(float(w) for w in weights),
        bias,
        threshold,
        f"DRCD 1.3 dev + CMRC 2018 dev, dev halves, {args.per_script} questions per script x 3 scripts,"
        f" each also without its paragraph; {len(rows)} windows",
        sure=SURE,
    )
    DATA.write_text(
        json.dumps(
            fitted.as_dict()
            | {
                "abstain_answerable_dev": round(float((answerable_p < threshold).mean()), 4),
                "abstain_unanswerable_dev": round(float((unanswerable_p < threshold).mean()), 4),
                "thresholds_dev": curve,
                "reliability_dev": reliability,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(DATA.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()

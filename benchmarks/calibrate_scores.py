"""Fit the hits' score: the probability that a hit's document is relevant, per mode (issue 26).

Searches the dev halves of the public sets (DRCD 1.3 and CMRC 2018 dev pooled, asked as written,
in simplified and in Taiwan traditional script; the three Python FAQ sets) in every mode, keeps
the top ``--k`` hits of each with their raw scores (``retrieval.merge.ranked``: the fused mix and
the query's best cosine in hybrid, the cosine in dense, BM25 in lexical), labels a hit relevant when
the set's qrels name its document, and fits one logistic regression per mode. Writes
``index/models/data/hit-calibration.json`` with each model's reliability on the dev halves. The
test halves are never read here.

Run: ``.venv/bin/python benchmarks/calibrate_scores.py`` (a few minutes once ``make quality`` has
built the indexes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import get_settings  # noqa: E402
from index.evaluation.evaluate import load_eval_set, sample  # noqa: E402
from index.evaluation.splits import split_set  # noqa: E402
from index.evaluation.squad import load_squad  # noqa: E402
from index.models import load_configured_embedder  # noqa: E402
from index.opening import open_configured  # noqa: E402
from index.retrieval.calibration import HITS_DATA, Calibration, HitCalibration, fit_logistic  # noqa: E402
from index.retrieval.merge import ranked  # noqa: E402
from index.text.normalize import normalize  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"
SQUAD = [SHARED / "reading-comprehension" / "DRCD_dev.json", SHARED / "reading-comprehension" / "cmrc2018_dev.json"]
FAQ = ["python-faq-zh-cn", "python-faq-zh-tw", "python-faq-tw-questions-cn-answers"]
FEATURES = {"hybrid": ("mix", "best_cosine"), "dense": ("cosine",), "lexical": ("log_bm25",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--per-set", type=int, default=600, help="dev questions per set and script")
    args = parser.parse_args()
    settings = get_settings()
    embedder = load_configured_embedder(settings)
    from service.cli.evaluate import _index_for, _index_of_documents

    sets = []
    for script in ("as-is", "t2s", "s2twp"):
        pooled = load_squad(SQUAD, query_script=script, split="dev")
        sets.append((pooled.eval_set, _index_of_documents(SQUAD, pooled.documents, embedder, True, None)))
    for name in FAQ:
        path = SHARED / "faq" / name
        if path.is_dir():
            eval_set = split_set(load_eval_set(path), "dev")
            sets.append((eval_set, _index_for(eval_set, path, None, embedder, True, None)))
    rows: dict[str, list[tuple[list[float], float]]] = {mode: [] for mode in FEATURES}
    for eval_set, where in sets:
        index = open_configured(settings, index_dir=where, embedder=embedder)
        snap = index.snapshot  # type: ignore[attr-defined]
        queries = sample(eval_set.queries, args.per_set)
        print(f"{eval_set.name}: {len(queries)} questions", flush=True)
        for query in queries:
            relevant = {doc for doc, grade in (eval_set.qrels or {}).get(query.id, {}).items() if grade > 0}
            norm = normalize(query.text)
            vector = index.encode_query(query.text)
            for mode in FEATURES:
                parts = [index.candidates(norm, None if mode == "lexical" else vector, args.k, mode, None, snap)]  # type: ignore[attr-defined]
                items, best = ranked(parts, args.k, mode)  # type: ignore[arg-type]
                rows_ = snap.passages.rows(pid for pid, _ in items)
                for pid, raw in items:
                    row = rows_.get(pid)
                    if row is None:
                        continue
                    values = {"mix": raw, "cosine": raw, "log_bm25": math.log1p(max(raw, 0.0)), "best_cosine": best}
                    rows[mode].append(([values[f] for f in FEATURES[mode]], float(row.doc_id in relevant)))
        index.close()
    out: dict[str, object] = {"fitted_on": "dev halves: DRCD+CMRC 2018 dev pooled (3 query scripts), Python FAQ x3"}
    by_mode = {}
    for mode, data in rows.items():
        x = np.asarray([f for f, _ in data])
        y = np.asarray([label for _, label in data])
        weights, bias = fit_logistic(x, y)
        calibration = Calibration(FEATURES[mode], tuple(float(w) for w in weights), bias, 0.5, "")
        by_mode[mode] = calibration
        p = np.asarray([calibration.probability(dict(zip(FEATURES[mode], f, strict=True))) for f, _ in data])
        reliability = []
        for lo in np.arange(0, 1, 0.1):
            inside = (p >= lo) & (p < lo + 0.1 if lo < 0.85 else p <= 1.0)
            if inside.any():
                reliability.append(
                    {
                        "bin": f"{lo:.1f}-{lo + 0.1:.1f}",
                        "hits": int(inside.sum()),
                        "relevant": round(float(y[inside].mean()), 3),
                    }
                )
        out[mode] = calibration.as_dict() | {"hits": len(data), "reliability_dev": reliability}
        out[mode].pop("threshold")  # type: ignore[union-attr]
        out[mode].pop("fitted_on")  # type: ignore[union-attr]
    HitCalibration(by_mode)  # the shape HitCalibration.load reads
    HITS_DATA.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(HITS_DATA.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()

"""Scores that mean the same from question to question: logistic models fitted on the public dev halves.

An answer's score is the probability that it is right (its characters match a reference answer with
F1 >= 0.5, CMRC 2018's measure), given what the reader and the sentence ranking saw: a logistic model
over ``FEATURES``, fitted by ``benchmarks/calibrate_answers.py`` on the DRCD and CMRC 2018 dev halves,
answerable questions and the same questions asked with their own paragraph removed. ``threshold``
is where ``ask`` says nothing; it was chosen on the same dev halves (docs/quality.md, "Answers").
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "models" / "data" / "answer-calibration.json"


@dataclass(frozen=True)
class Calibration:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    fitted_on: str = ""
    #: An answer at least this probable ends the reading (``retrieval.answer.read_span``).
    sure: float = 2.0

    def logit(self, values: Mapping[str, float]) -> float:
        return self.bias + sum(w * float(values[name]) for name, w in zip(self.features, self.weights, strict=True))

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.logit(values)
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0

    @classmethod
    def load(cls, path: Path = DATA) -> Calibration:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            features=tuple(data["features"]),
            weights=tuple(float(w) for w in data["weights"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            fitted_on=str(data.get("fitted_on", "")),
            sure=float(data.get("sure", 2.0)),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 4),
            "sure": round(self.sure, 4),
            "fitted_on": self.fitted_on,
        }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias by Newton's method on the L2-penalized log-loss (features standardized inside)."""
    mean, std = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / std
    return weights, float(w[-1] - (weights * mean).sum())


#: Before any fit: the reader's own preference (margin > 0 means "rather answer than not").
UNFITTED = Calibration(features=("margin",), weights=(1.0,), bias=0.0, threshold=0.5, fitted_on="unfitted")


@functools.cache
def shipped() -> Calibration:
    """The fitted calibration that ships with the reader, or ``UNFITTED`` when there is none (read once)."""
    try:
        return Calibration.load()
    except (OSError, ValueError, KeyError):
        return UNFITTED


HITS_DATA = DATA.with_name("hit-calibration.json")


@dataclass(frozen=True)
class HitCalibration:
    """A hit's score: the probability that its document is relevant, one logistic model per mode,
    fitted by ``benchmarks/calibrate_scores.py`` on the dev halves of the public sets. Its features
    keep a query's order: the fused mix (hybrid), the cosine (dense), BM25 (lexical), plus, for
    hybrid, the query's best cosine, which says how well anything matches at all."""

    by_mode: Mapping[str, Calibration]

    def score(self, mode: str, raw: float, best_cosine: float) -> float:
        values = {"mix": raw, "cosine": raw, "log_bm25": math.log1p(max(raw, 0.0)), "best_cosine": best_cosine}
        return self.by_mode[mode].probability(values)

    @classmethod
    def load(cls, path: Path = HITS_DATA) -> HitCalibration:
        data = json.loads(path.read_text(encoding="utf-8"))
        by_mode = {}
        for mode in ("hybrid", "dense", "lexical"):
            entry = data[mode]
            by_mode[mode] = Calibration(
                tuple(entry["features"]), tuple(float(w) for w in entry["weights"]), float(entry["bias"]), 0.5
            )
        return cls(by_mode)


UNFITTED_HITS = HitCalibration(
    {
        "hybrid": Calibration(("mix",), (1.0,), 0.0, 0.5, "unfitted"),
        "dense": Calibration(("cosine",), (1.0,), 0.0, 0.5, "unfitted"),
        "lexical": Calibration(("log_bm25",), (1.0,), 0.0, 0.5, "unfitted"),
    }
)


def _shipped_hits() -> HitCalibration:
    try:
        return HitCalibration.load()
    except (OSError, ValueError, KeyError):
        return UNFITTED_HITS


#: What every index scores its hits with (read once, at import).
HITS = _shipped_hits()

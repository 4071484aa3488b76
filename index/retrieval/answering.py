"""What an index answers with: the span reader, the calibration of its scores, the abstain threshold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..models.span import SpanReader
from .calibration import UNFITTED, Calibration


@dataclass(frozen=True)
class Answering:
    """How ``ask`` answers: the span reader (None: the best sentence is the answer), the calibration
    of its scores, and the probability under which it says nothing (None: the calibration's)."""

    reader: SpanReader | None = None
    calibration: Calibration = UNFITTED
    threshold: float | None = None
    #: Called with each span read and its features (what ``benchmarks/calibrate_answers.py`` fits on).
    observe: Callable[[str, dict[str, float]], None] | None = None

    @property
    def sure(self) -> float:
        """A probability at which the first windows' answer is taken without reading further
        (never while observing: calibration sees every window)."""
        return 2.0 if self.observe is not None else self.calibration.sure

    @property
    def cut(self) -> float:
        return self.calibration.threshold if self.threshold is None else self.threshold


#: The best sentence is the answer (no reader).
SENTENCES = Answering()

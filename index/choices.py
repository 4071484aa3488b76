"""The closed sets of choices that callers name (modes, backends, scripts, splits): plain ``typing``
only, so a command line can list them without importing the library behind them."""

from __future__ import annotations

from typing import Literal, get_args

#: How a query is searched.
Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: What ``eval`` can measure: the three modes and the naive dense baseline.
EvalMode = Literal["dense", "lexical", "hybrid", "naive"]
EVAL_MODES: tuple[str, ...] = (*MODES, "naive")
#: What a judgment names: a passage or a whole document.
Level = Literal["passage", "doc"]
#: How SQuAD questions are asked: as written, or rewritten by OpenCC.
QueryScript = Literal["as-is", "t2s", "s2t", "s2twp"]
QUERY_SCRIPTS: tuple[str, ...] = get_args(QueryScript)
#: Which half of a question set: all, the tuning half (dev) or the held-out half (test).
Split = Literal["all", "dev", "test"]
SPLITS: tuple[str, ...] = get_args(Split)
#: How the default model runs (``ZHSEARCH_BACKEND``); docs/decisions.md, "Backends".
Backend = Literal["torch", "onnx", "onnx-int8", "onnx-int8-queries"]
BACKENDS: tuple[str, ...] = get_args(Backend)

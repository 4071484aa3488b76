"""How an exported ONNX graph is stored: its weights in a data file beside it (export version 5).

ONNX external data: the graph file is small (22 KB for the fp32 encoder) and names
``<file>.<token>.data``, which ONNX Runtime memory-maps instead of parsing the weights into the
process (docs/decisions.md, "Weights beside the graph, memory-mapped").
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from .cache import sha256_file

#: Initializers at least this large (bytes) go to the data file: every weight; small constants stay inline.
EXTERNAL_THRESHOLD = 1024


def store_weights_apart(tmp: Path, name: str) -> dict[str, Any]:
    """Rewrite the one-file model ``tmp`` (to be published as ``name``) as a graph whose weights live in
    ``<name>.<token>.data`` beside it, and return its record fields. The data file gets its final name
    now (no published graph names it until ``tmp`` is renamed); ``sha256`` is the one-file model's,
    so a fingerprint does not depend on how the weights are stored."""
    import onnx

    whole = sha256_file(tmp)
    data = f"{name}.{secrets.token_hex(4)}.data"
    model = onnx.load(str(tmp))
    try:
        onnx.save_model(
            model,
            str(tmp),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data,
            size_threshold=EXTERNAL_THRESHOLD,
        )
        os.chmod(tmp.parent / data, tmp.stat().st_mode & 0o777)  # onnx writes it private; the graph is not
    except BaseException:
        (tmp.parent / data).unlink(missing_ok=True)
        raise
    return {
        "size": tmp.stat().st_size,
        "sha256": whole,
        "graph_sha256": sha256_file(tmp),  # it names its data file: a record and a graph of two exports differ
        "data_file": data,
        "data_size": (tmp.parent / data).stat().st_size,
    }


def drop_unnamed_data(onnx_dir: Path, named: set[str]) -> None:
    """Remove the data files of ``onnx_dir`` that are not in ``named``: those of replaced graphs (a
    process that mapped one keeps it: the file outlives its name) and of killed exports. Call it
    under the export lock."""
    for data in onnx_dir.glob("*.data"):
        if data.name not in named:
            data.unlink(missing_ok=True)

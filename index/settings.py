"""Configuration, read from ``ZHSEARCH_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .choices import Backend
from .models.cache import DEFAULT_MODEL_NAME
from .retrieval.query import MAX_K, MAX_QUERY_CHARS, QueryLimits
from .text.budgets import MB, Budgets

_BUDGETS = Budgets()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHSEARCH_", env_file=".env", extra="ignore")

    index_dir: Path = Field(
        Path(".zhsearch/index"), description="Folder holding the built index: the server's default collection."
    )
    collections_dir: Path = Field(
        Path(".zhsearch/collections"),
        description="Folder holding the other collections, one index folder each (`/v1/collections`). "
        "Default: `collections` beside the index folder.",
    )
    docs: list[Path] = Field([Path("seeds")], description="Documents indexed by `zhsearch build` by default.")
    model: str = Field(DEFAULT_MODEL_NAME, description="Embedding model: the default, a path or a hub id.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "zhsearch", description="Where converted models and jieba's dictionary (SQLite) live."
    )
    device: str = Field("cpu", description="Torch device for the model.")
    backend: Backend = Field(
        "onnx-int8-queries",
        description="How the default model runs: onnx-int8-queries (int8 ONNX Runtime queries, float32 ONNX "
        "documents; indexes stay torch-compatible), torch, onnx (ONNX Runtime fp32 for both) or onnx-int8 (int8 "
        "everywhere: a new index fingerprint). See index/models/load.py.",
    )
    answers: Literal["span", "sentence"] = Field(
        "span",
        description="What an answer is: span (the shortest text that answers, cut by the span reader, with its "
        "sentence as context) or sentence (the answering sentence, the rule before issue 26).",
    )
    answer_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Calibrated probability under which ask says nothing (default: the fitted threshold, "
        "index/models/data/answer-calibration.json).",
    )
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    max_query_chars: int = Field(
        MAX_QUERY_CHARS, ge=1, le=MAX_QUERY_CHARS, description="Longest accepted query or question."
    )
    max_k: int = Field(MAX_K, ge=1, le=MAX_K, description="Largest accepted k.")
    threads: int | None = Field(
        None, ge=1, description="Torch intra-op threads (default: 1 per encoding worker when serving)."
    )
    encode_workers: int = Field(2, ge=1, le=64, description="Query-encoding threads of the server (micro-batching).")
    ef_search: int = Field(
        256, ge=1, le=4096, description="HNSW candidates kept per query on large (approximate) indexes."
    )
    merge_vectors: int = Field(
        50_000, ge=1, description="Vectors written live (passages, sentences apart) before a vector checkpoint."
    )
    shard_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Cluster (serve --ray): seconds the router waits for a shard before a 503."
    )
    api_key: str | None = Field(None, description="If set, write endpoints need `Authorization: Bearer <key>`.")
    read_key: str | None = Field(None, description="If set, read endpoints need this key (or the API key).")
    watch: list[Path] = Field(
        [],
        description="Folders the server keeps its default collection in step with (`serve --watch DIR`): files "
        "added, changed, moved and deleted are written live.",
    )
    watch_interval_s: float = Field(2.0, gt=0, le=3600, description="How often a watched folder's listing is read.")
    keys_file: Path | None = Field(
        None,
        description="JSON file of named API keys (hashed secrets, groups, per-collection read or write): "
        "`zhsearch keys add`. Once set, every request needs a key from it (or the API/read key).",
    )
    max_document_bytes: int = Field(5 * 1024 * 1024, ge=1, description="Largest accepted document.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest accepted request body.")
    max_unpacked_bytes: int = Field(
        _BUDGETS.unpacked_bytes, ge=1, description="Largest unpacked size of an uploaded archive (DOCX), all members."
    )
    max_member_bytes: int = Field(_BUDGETS.member_bytes, ge=1, description="Largest unpacked archive member.")
    max_pages: int = Field(_BUDGETS.pages, ge=1, description="Most pages of one PDF.")
    max_chars: int = Field(_BUDGETS.chars, ge=1, description="Most characters of text read from one file.")
    max_metadata_bytes: int = Field(
        _BUDGETS.metadata_bytes, ge=2, description="Largest metadata of a document, as JSON."
    )
    max_metadata_fields: int = Field(_BUDGETS.metadata_fields, ge=0, description="Most metadata fields of a document.")
    max_metadata_depth: int = Field(_BUDGETS.metadata_depth, ge=1, description="Deepest nesting of metadata values.")
    parse_seconds: float = Field(_BUDGETS.parse_seconds, gt=0, description="Wall-clock limit on reading one upload.")
    parse_memory_mb: int = Field(
        _BUDGETS.parse_memory_bytes // MB,
        ge=256,
        description="Memory (address space) of the process reading an upload.",
    )
    ocr: bool = Field(
        True,
        description="Read scanned PDF pages and image files (.png, .jpg, .tif, ...) by OCR; off: they are refused "
        "with that reason.",
    )
    max_ocr_pages: int = Field(_BUDGETS.ocr_pages, ge=1, description="Most pages of one file read by OCR.")
    allowed_hosts: list[str] | None = Field(
        None,
        description="Host names the server answers (Host header). Default: on a loopback address only localhost, "
        "127.0.0.1 and ::1 (DNS-rebinding protection); on another address any. Behind a proxy, list its names.",
    )
    cors_origins: list[str] = Field(
        [], description="Origins allowed to call the API from a browser (CORS); none by default."
    )

    @model_validator(mode="after")
    def _collections_beside_index(self) -> Settings:
        if "collections_dir" not in self.model_fields_set:
            self.collections_dir = self.index_dir.parent / "collections"
            self.__pydantic_fields_set__.discard("collections_dir")  # still derived: ``with_index_dir``
        return self

    def with_index_dir(self, index_dir: Path) -> Settings:
        """These settings for another index folder (and, unless set, its collections beside it)."""
        update: dict[str, Path] = {"index_dir": index_dir}
        if "collections_dir" not in self.model_fields_set:
            update["collections_dir"] = index_dir.parent / "collections"
        return self.model_copy(update=update)

    @field_validator("api_key", "read_key")
    @classmethod
    def _no_empty_key(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is set but empty: unset it, or set a key (an empty key would let anyone in)")
        return value

    @property
    def query_limits(self) -> QueryLimits:
        return QueryLimits(self.max_query_chars, self.max_k)

    @property
    def budgets(self) -> Budgets:
        return Budgets(
            unpacked_bytes=self.max_unpacked_bytes,
            member_bytes=self.max_member_bytes,
            pages=self.max_pages,
            chars=self.max_chars,
            metadata_bytes=self.max_metadata_bytes,
            metadata_fields=self.max_metadata_fields,
            metadata_depth=self.max_metadata_depth,
            parse_seconds=self.parse_seconds,
            parse_memory_bytes=self.parse_memory_mb * MB,
            ocr=self.ocr,
            ocr_pages=self.max_ocr_pages,
        )

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    @property
    def write_policy(self) -> str | None:
        """Why writes are refused whatever a request carries, or None when a valid key (or, on a loopback
        address with no keys at all, nothing) lets a client write."""
        if self.api_key is not None or self.keys_file is not None:
            return None
        if self.read_key is not None:
            return "writes are disabled: the server has a read key (ZHSEARCH_READ_KEY) but no ZHSEARCH_API_KEY"
        if not self.loopback:
            return f"writes are disabled: the server listens on {self.host} without ZHSEARCH_API_KEY"
        return None

    @property
    def hosts(self) -> frozenset[str] | None:
        """Host names accepted in the Host header, or None for any."""
        if self.allowed_hosts is not None:
            return frozenset(h.lower() for h in self.allowed_hosts)
        return frozenset({"localhost", "127.0.0.1", "::1", "[::1]"}) if self.loopback else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

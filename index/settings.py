"""Configuration, read from ``ZHSEARCH_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .models.base import Backend
from .models.cache import DEFAULT_MODEL_NAME
from .retrieval.query import MAX_K, MAX_QUERY_CHARS, QueryLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHSEARCH_", env_file=".env", extra="ignore")

    index_dir: Path = Field(Path(".zhsearch/index"), description="Folder holding the built index.")
    docs: list[Path] = Field([Path("seeds")], description="Documents indexed by `zhsearch build` by default.")
    model: str = Field(DEFAULT_MODEL_NAME, description="Embedding model: the default, a path or a hub id.")
    cache_dir: Path = Field(Path.home() / ".cache" / "zhsearch", description="Where converted models live.")
    device: str = Field("cpu", description="Torch device for the model.")
    backend: Backend = Field(
        "onnx-int8-queries",
        description="How the default model runs: onnx-int8-queries (int8 ONNX Runtime queries, torch documents; "
        "indexes stay torch-compatible), torch, onnx (ONNX Runtime fp32) or onnx-int8 (int8 everywhere: a new "
        "index fingerprint). See index/embed.py.",
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
    max_document_bytes: int = Field(5 * 1024 * 1024, ge=1, description="Largest accepted document.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest accepted request body.")

    @property
    def query_limits(self) -> QueryLimits:
        return QueryLimits(self.max_query_chars, self.max_k)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

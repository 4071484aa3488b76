"""Building an index folder from documents.

Documents whose content hash is unchanged since the live generation (built with
the same model, normalizer and chunking) keep their passages and vectors; only
new and changed documents are chunked and embedded.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from ..errors import IndexMismatchError, IndexUnavailableError, InvalidInputError
from ..models import DOCUMENT_BATCH, Embedder
from ..storage import dense
from ..storage.lexical import TOKENIZER, LexicalIndex
from ..storage.record import folder, store
from ..storage.record.manifest import Manifest
from ..text.chunk import ChunkConfig
from ..text.clean import parse
from ..text.ingest import Document
from ..text.normalize import PROFILE, dictionary_hash
from ..version import __version__
from .embedding import embed
from .prepare import passages, stored_document

log = logging.getLogger("zhsearch.build")
PASSAGE_TEXT = dense.EMBEDDED_TEXT
# Passages embedded (and written to SQLite) per step: long enough to sort by length, short enough for steady progress.
EMBED_GROUP = 256
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    path: Path
    documents: int
    passages: int
    reused_documents: int
    embedded_passages: int
    seconds: float
    unchanged: bool


def corpus_hash(documents: Sequence[Document | store.StoredDocument]) -> str:
    """Hash of the documents read from paths (documents added live are not part of it)."""
    digest = hashlib.sha256()
    for doc in sorted((d for d in documents if d.origin == "build"), key=lambda d: d.id):
        digest.update(f"{doc.id}\0{doc.content_hash}\n".encode())
    return digest.hexdigest()


def _new_manifest(embedder: Embedder, config: ChunkConfig, documents: Sequence[Document]) -> Manifest:
    return Manifest(
        model=embedder.name,
        model_fingerprint=embedder.fingerprint,
        dim=embedder.dim,
        normalization=PROFILE,
        dictionary_hash=dictionary_hash(),
        chunking=config.as_dict(),
        passage_text=PASSAGE_TEXT,
        zhsearch_version=__version__,
        corpus_hash=corpus_hash(documents),
        built_at="",
        documents=len(documents),
        passages=0,
        build_seconds=0.0,
        lexical=TOKENIZER,
    )


def _previous(index_dir: Path, manifest: Manifest) -> tuple[Path, Manifest] | None:
    """The live generation, when its passages and vectors can be reused (same model, normalizer, chunking)."""
    path = folder.current(index_dir)
    if path is None:
        return None
    try:
        old = Manifest.read(path / folder.MANIFEST)
    except IndexUnavailableError as exc:
        log.warning("every document is embedded again: the live index cannot be reused (%s)", exc)
        return None
    return (path, old) if old.settings_key() == manifest.settings_key() else None


def live_documents(index_dir: Path, taken: set[str]) -> list[Document]:
    """Documents added through the API to the live index, so a rebuild from paths keeps them.

    They are read from the store whatever the index's format (its manifest may be older); a store
    that cannot be read refuses the build (``IndexMismatchError``) rather than publish without them.
    """
    path = folder.current(index_dir)
    if path is None:
        return []
    try:
        conn = store.connect(path / folder.STORE, readonly=True)
        try:
            rows = store.documents_by_origin(conn, "api")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise IndexMismatchError(
            f"cannot read the documents added through the API to {path} ({exc}); a rebuild would drop them."
            " Build into a new folder (--index-dir), or remove this one if they are not needed"
        ) from exc
    return [
        Document(r.id, r.text, r.title, r.metadata, r.source, r.format, origin="api") for r in rows if r.id not in taken
    ]


def _share(progress: Progress, offset: int, size: int, total: int) -> Callable[[float], None]:
    """A group's share of work done, as passages done of all ``total`` (what the bar counts)."""
    return lambda share: progress("embed", offset + round(size * share), total)


def _same(old: Manifest, new: Manifest) -> bool:
    return (old.corpus_hash, old.lexical) == (new.corpus_hash, new.lexical)


def build_index(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    *,
    config: ChunkConfig | None = None,
    progress: Progress | None = None,
    batch_size: int = DOCUMENT_BATCH,
) -> BuildReport:
    """Build (or incrementally rebuild) the index in ``index_dir`` and publish it atomically."""
    config = config or ChunkConfig()
    began = time.perf_counter()
    if not documents:
        raise InvalidInputError("no documents to index")
    held = folder.lock(index_dir, "zhsearch build")
    try:
        return _build_locked(documents, index_dir, embedder, config, progress, batch_size, began)
    finally:
        held.close()


def build_empty(index_dir: Path, embedder: Embedder, config: ChunkConfig | None = None) -> BuildReport:
    """Publish an index of no documents in ``index_dir``, to be filled by live writes (a new collection)."""
    held = folder.lock(index_dir, "zhsearch build")
    try:
        return _build_locked(
            [], index_dir, embedder, config or ChunkConfig(), None, DOCUMENT_BATCH, time.perf_counter()
        )
    finally:
        held.close()


def _build_locked(
    documents: Sequence[Document],
    index_dir: Path,
    embedder: Embedder,
    config: ChunkConfig,
    progress: Progress | None,
    batch_size: int,
    began: float,
) -> BuildReport:
    documents = list(documents) + live_documents(index_dir, {d.id for d in documents})
    manifest = _new_manifest(embedder, config, documents)
    previous = _previous(index_dir, manifest)
    if previous and _same(previous[1], manifest):
        conn = store.connect(previous[0] / folder.STORE, readonly=True)
        try:
            document_count, passage_count = store.counts(conn)  # documents added live since the build count too
        finally:
            conn.close()
        return BuildReport(
            path=previous[0],
            documents=document_count,
            passages=passage_count,
            reused_documents=len(documents),
            embedded_passages=0,
            seconds=0.0,
            unchanged=True,
        )

    building = folder.new_generation(index_dir)
    try:
        report = _build_into(building, documents, embedder, config, manifest, previous, progress, batch_size)
        manifest.build_seconds = round(time.perf_counter() - began, 3)
        manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
        manifest.passages = report.passages
        manifest.write(building / folder.MANIFEST)
        final = folder.publish(index_dir, building)
    except BaseException:
        folder.discard(building)
        raise
    return replace(report, path=final, seconds=manifest.build_seconds)


def _build_into(
    target: Path,
    documents: Sequence[Document],
    embedder: Embedder,
    config: ChunkConfig,
    manifest: Manifest,
    previous: tuple[Path, Manifest] | None,
    progress: Progress | None,
    batch_size: int,
) -> BuildReport:
    old_conn = store.connect(previous[0] / folder.STORE, readonly=True) if previous else None
    old_vectors = dense.DenseIndex.load(previous[0]) if previous else None
    old_hashes = store.document_hashes(old_conn) if old_conn else {}
    next_id = store.max_passage_id(old_conn) + 1 if old_conn else 1

    conn = store.connect(target / folder.STORE)
    carried: list[dense.Vectors] = []
    pending: list[store.StoredPassage] = []
    reused = 0
    total_passages = 0
    try:
        with conn:
            if progress:
                progress("read", 0, len(documents))
            for done, doc in enumerate(documents, start=1):
                layout = parse(doc)
                store.insert_document(conn, stored_document(doc, layout))
                if old_conn is not None and old_vectors is not None and old_hashes.get(doc.id) == doc.content_hash:
                    kept = store.passages_of(old_conn, doc.id)
                    store.insert_passages(conn, kept)
                    carried.append(old_vectors.take(kept))
                    reused += 1
                    total_passages += len(kept)
                else:
                    fresh = passages(doc, layout, config, embedder, next_id)
                    pending.extend(fresh)
                    next_id += len(fresh)
                if progress:
                    progress("read", done, len(documents))
            total_passages += len(pending)
            sentences = sum(len(c.sentence_ids) for c in carried)
            sentences += sum(dense.sentence_count(p.text) for p in pending)
            vectors = dense.DenseIndex.for_size(embedder.dim, total_passages, sentences)
            manifest.vector_index = vectors.kind
            for kept_vectors in carried:
                vectors.add(kept_vectors)
            if progress:
                progress("embed", 0, len(pending))  # the bar is there from the start, over every passage
            for offset in range(0, len(pending), EMBED_GROUP):
                batch = pending[offset : offset + EMBED_GROUP]
                heard = _share(progress, offset, len(batch), len(pending)) if progress else None
                vectors.add(embed(batch, embedder, batch_size, heard))
                store.insert_passages(conn, batch)
        vectors.save(target)
        every = store.all_passages(conn)
        LexicalIndex.build(every).save(target / folder.LEXICAL)
        # A published generation is one plain file: no -wal/-shm beside it.
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
        if old_conn is not None:
            old_conn.close()
    return BuildReport(
        path=target,
        documents=len(documents),
        passages=total_passages,
        reused_documents=reused,
        embedded_passages=len(pending),
        seconds=0.0,
        unchanged=False,
    )

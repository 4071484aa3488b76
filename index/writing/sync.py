"""Keeping an index in step with a folder: files added, changed and deleted since the last sync are
added, indexed again and removed, through the live write path (``ServedIndex.put_many``, ``delete``).

What the index holds of a folder is what it says itself: the documents whose ``source`` lies in
the folder. A file's documents get the ids a build gives them (the file name's stem, or the
records' ids); a file moved or renamed without a change of content keeps the id it had, so links
to it still work. A file that cannot be read now (half written, or broken) keeps what the index
has of it and is reported: a sync never deletes a document because its file failed to read once.
An id that the index holds from elsewhere (the API, another folder) is reported, never overwritten.

A file read by OCR (a scan, an image) records its bytes' SHA-256 (``metadata.file_sha256``); while
they are unchanged a sync does not read it again, since OCR costs seconds a page.

``watch_folder`` runs a sync whenever the folder's listing (names, sizes, modification times)
changes: ``zhsearch serve --watch DIR``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..served import ServedIndex
from ..storage.record.store import StoredDocument
from ..text.ingest import FILE_HASH, Document, JsonFields, Skipped, read_paths

log = logging.getLogger("zhsearch.sync")

#: Documents written per change: each batch is one durable transaction.
SYNC_BATCH = 32


@dataclass
class SyncReport:
    folder: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.moved or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "added": self.added,
            "changed": self.changed,
            "moved": self.moved,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        return (
            f"{self.folder}: {len(self.added)} added, {len(self.changed)} changed, {len(self.moved)} moved, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged, {len(self.skipped)} not read "
            f"({self.seconds:.1f} s)"
        )


def _inside(source: str, root: Path) -> bool:
    try:
        return Path(source).is_relative_to(root)
    except (ValueError, OSError):
        return False


def _held(index: ServedIndex, root: Path) -> tuple[dict[str, StoredDocument], set[str]]:
    """The documents the index holds from ``root`` (by id), and every id it holds."""
    _, infos = index.documents(0, sys.maxsize)
    ids = {info.id for info in infos}
    held: dict[str, StoredDocument] = {}
    for doc_id in ids:
        stored = index.document(doc_id)
        if stored.source and _inside(stored.source, root):
            held[doc_id] = stored
    return held, ids


def sync_folder(
    index: ServedIndex,
    folder: Path,
    fields: JsonFields | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SyncReport:
    """Bring what ``index`` holds of ``folder`` in step with the files there now (see the module doc)."""
    began = time.perf_counter()
    root = folder.resolve()
    report = SyncReport(str(root))
    held, every_id = _held(index, root)
    # Files read by OCR are not read again while their bytes are those the index read (seconds a page).
    scanned: dict[str, list[StoredDocument]] = {}
    for stored in held.values():
        if isinstance(stored.metadata.get(FILE_HASH), str):
            scanned.setdefault(stored.source, []).append(stored)
    kept: set[str] = set()

    def unchanged(file: Path) -> bool:
        before = scanned.get(str(file))
        if not before or before[0].metadata[FILE_HASH] != _sha256(file):
            return False
        kept.update(stored.id for stored in before)
        return True

    loaded = read_paths([root], fields, unchanged=unchanged)
    report.skipped = list(loaded.skipped)
    report.unchanged += len(kept)
    unreadable = {str(Path(s.path).resolve()) for s in loaded.skipped}
    current: dict[str, Document] = {}
    for doc in loaded.documents:
        if doc.id in kept:  # an unchanged scan holds this id; it was not read again, so say so here
            source = held[doc.id].source
            report.skipped.append(Skipped(doc.source, f"duplicate document id {doc.id!r} in {doc.source} and {source}"))
        else:
            current[doc.id] = doc
    _, infos = index.documents(0, sys.maxsize)  # again: reading the folder (OCR) can take minutes
    every_id = {info.id for info in infos}
    # Documents whose id no file gives now: a file renamed or moved earlier keeps the id it had (found
    # by its path, or by its content when it moved again); those of an unreadable file stay.
    orphans = {
        doc_id: stored
        for doc_id, stored in sorted(held.items())
        if doc_id not in current and doc_id not in kept and str(Path(stored.source).resolve()) not in unreadable
    }
    per_source: dict[str, list[StoredDocument]] = {}
    for stored in orphans.values():
        per_source.setdefault(stored.source, []).append(stored)
    by_source = {source: found[0] for source, found in per_source.items() if len(found) == 1}
    by_content = {stored.content_hash: stored for stored in orphans.values()}
    writes: list[Document] = []
    for doc in current.values():
        old = held.get(doc.id)
        if old is None:
            old = by_source.get(doc.source)
            if old is None:
                old = by_content.get(doc.content_hash)
            if old is not None and orphans.pop(old.id, None) is not None:
                doc = replace(doc, id=old.id)
            else:
                old = None
        if old is None:
            if doc.id in every_id:
                report.skipped.append(
                    Skipped(doc.source, f"{doc.source}: document id {doc.id!r} is taken by a document not from {root}")
                )
            else:
                writes.append(doc)
                report.added.append(doc.id)
        elif old.content_hash != doc.content_hash:
            writes.append(doc)
            report.changed.append(doc.id)
        elif old.source != doc.source:
            writes.append(doc)
            report.moved.append(doc.id)
        else:
            report.unchanged += 1
    doomed = sorted(orphans)
    total = len(writes) + len(doomed)
    if progress:
        progress("sync", 0, total)
    for start in range(0, len(writes), SYNC_BATCH):
        batch = writes[start : start + SYNC_BATCH]
        index.put_many(batch, replace=True)
        if progress:
            progress("sync", start + len(batch), total)
    for done, doc_id in enumerate(doomed, start=len(writes) + 1):
        index.delete(doc_id)
        if progress:
            progress("sync", done, total)
    report.removed = doomed
    report.seconds = time.perf_counter() - began
    return report


def _sha256(file: Path) -> str | None:
    try:
        with file.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def listing(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What a watch compares: every file's path, size and modification time (no file is read)."""
    found: list[tuple[str, int, int]] = []

    def walk(path: Path) -> Iterator[os.DirEntry[str]]:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from walk(Path(entry.path))
            else:
                yield entry

    for entry in walk(folder):
        try:
            st = entry.stat()
        except OSError:
            continue
        found.append((entry.path, st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


def watch_folder(
    index: ServedIndex,
    folder: Path,
    stop: threading.Event,
    interval_s: float = 2.0,
    on_report: Callable[[SyncReport], None] | None = None,
) -> None:
    """Sync ``folder`` now and whenever its listing changes, until ``stop`` is set (a server's thread).

    A failed sync is logged and tried again at the next change; the server keeps serving."""
    seen: tuple[tuple[str, int, int], ...] | None = None
    while not stop.is_set():
        now = listing(folder)
        if now != seen:
            seen = now
            try:
                report = sync_folder(index, folder)
            except Exception:  # noqa: BLE001 - logged; the next change tries again
                log.exception("sync of %s failed; trying again at its next change", folder)
            else:
                if report.touched or report.skipped:
                    log.info("sync %s", report.summary())
                    for skipped in report.skipped:
                        log.warning("sync: not read: %s", skipped.reason)
                if on_report is not None:
                    on_report(report)
        stop.wait(interval_s)


__all__ = ["SyncReport", "listing", "sync_folder", "watch_folder"]

"""An index folder and its generations.

``INDEX_DIR/current`` is a symlink to ``INDEX_DIR/generations/<name>``, which
holds ``manifest.json``, ``vectors.faiss`` and ``sentences.faiss`` (dense), ``store.sqlite3``
and ``lexical/`` (BM25). A build writes
a new generation beside the live one and publishes it by atomically replacing
the symlink, so a killed build leaves the previous index untouched.

A process that reads a generation pins it (a shared lock on ``<generation>/.readers``);
a publish removes only the old generations no reader pins, and a later publish
removes the rest once they are free.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import IO

from ...errors import IndexBusyError, IndexNotFoundError

MANIFEST = "manifest.json"
STORE = "store.sqlite3"
LEXICAL = "lexical"
READERS = ".readers"


def current(index_dir: Path) -> Path | None:
    link = index_dir / "current"
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if (target / MANIFEST).exists() else None


def require_current(index_dir: Path) -> Path:
    path = current(index_dir)
    if path is None:
        raise IndexNotFoundError(f"no index in {index_dir}; build one with `zhsearch build`")
    return path


def private(index_dir: Path) -> None:
    """Make ``index_dir`` readable by its owner only: it holds the documents' full text."""
    index_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if index_dir.stat().st_mode & 0o077:
        os.chmod(index_dir, 0o700)


def new_generation(index_dir: Path) -> Path:
    private(index_dir)
    generations = index_dir / "generations"
    generations.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    path = generations / f".building-{name}"
    path.mkdir(mode=0o700)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(index_dir: Path, building: Path) -> Path:
    """Make ``building`` the live generation; older ones are removed afterwards."""
    final = building.with_name(building.name.removeprefix(".building-"))
    os.rename(building, final)
    _fsync_dir(final.parent)
    tmp_link = index_dir / f".current-{secrets.token_hex(4)}"
    os.symlink(os.path.relpath(final, index_dir), tmp_link)
    os.replace(tmp_link, index_dir / "current")
    _fsync_dir(index_dir)
    for old in (index_dir / "generations").iterdir():
        if old != final and _unpinned(old):
            shutil.rmtree(old, ignore_errors=True)
    return final


def pin(generation: Path) -> IO[str]:
    """Keep ``generation`` on disk while the returned file is open (readers of a published index)."""
    handle = open(generation / READERS, "a+", encoding="utf-8")  # held open on purpose
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _unpinned(generation: Path) -> bool:
    readers = generation / READERS
    if not readers.exists():
        return True
    with open(readers, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def discard(building: Path) -> None:
    shutil.rmtree(building, ignore_errors=True)


def lock(index_dir: Path, purpose: str, *, shared: bool = False) -> IO[str]:
    """Hold the index exclusively (serving or building); release by closing the returned file.

    ``shared``: held beside other shared holders (the replicas of a cluster's shard), never beside
    an exclusive one (a build).
    """
    private(index_dir)
    handle = open(index_dir / ".lock", "a+", encoding="utf-8")  # held open on purpose
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise IndexBusyError(
            f"{index_dir} is in use ({holder}); stop it first, or add documents through the running API"
        ) from None
    if not shared:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{purpose} by pid {os.getpid()}")
        handle.flush()
    return handle

"""Collections: many indexes in one server, sharing one model, one query batcher and one span reader.

The default collection is the server's ``index_dir`` (a single node or a cluster),
so a server without collections works as before. Every other collection is an
index folder of its own under ``collections_dir`` (the single-node format: it can
be opened alone with ``--index-dir``, or moved), with its description in
``collection.json`` beside the index's files. A folder put there by hand, or built
by ``zhsearch build --collection NAME`` while the server runs, is found on first use.

Requests hold a collection while they use it (``using``): a delete waits for them,
then closes the index and removes its folder (renamed aside first, so a crash leaves
no half-deleted collection, and the next start clears what is left).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import ConflictError, InvalidInputError, NotFoundError, ZhsearchError
from .models import Embedder
from .served import ServedIndex
from .storage.record import folder

log = logging.getLogger("zhsearch.collections")

DEFAULT_COLLECTION = "default"
#: A collection's name: it is a folder name and a URL path segment, so plain ASCII.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
INFO = "collection.json"
MAX_DESCRIPTION = 500
#: The most collections one server holds.
MAX_COLLECTIONS = 10_000
_TRASH = ".deleted-"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInputError(
            f"collection name {name[:80]!r}: 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, kw_only=True)
class CollectionInfo:
    name: str
    description: str
    created: str
    path: Path


def collection_dir(root: Path, name: str) -> Path:
    """The index folder of collection ``name`` under ``root`` (``collections_dir``)."""
    return root / check_name(name)


def read_info(name: str, path: Path) -> CollectionInfo:
    try:
        found = json.loads((path / INFO).read_text("utf-8"))
    except (OSError, ValueError):
        found = {}
    return CollectionInfo(
        name=name,
        description=str(found.get("description", "")),
        created=str(found.get("created", "")),
        path=path,
    )


def _write_info(info: CollectionInfo) -> None:
    body = {"name": info.name, "description": info.description, "created": info.created}
    partial = info.path / f".{INFO}.partial"
    partial.write_text(json.dumps(body, ensure_ascii=False, indent=2), "utf-8")
    partial.replace(info.path / INFO)


def collection_folders(root: Path) -> list[CollectionInfo]:
    """The collection folders under ``root`` (``collections_dir``), by name: those a server serves
    once they hold an index (``opening.has_index``)."""
    if not root.is_dir():
        return []
    return [
        read_info(path.name, path)
        for path in sorted(root.iterdir())
        if path.is_dir() and NAME.fullmatch(path.name) and path.name != DEFAULT_COLLECTION
    ]


class _Held:
    """An open collection and the requests using it."""

    def __init__(self, info: CollectionInfo, index: ServedIndex) -> None:
        self.info = info
        self.index = index
        self.users = 0
        self.idle = threading.Condition()
        #: Set by a delete that stopped waiting: the last request using the collection closes it.
        self.finish: Callable[[], None] | None = None


class Collections:
    """The server's collections by name: ``using`` one, ``create``, ``delete``, ``infos``."""

    def __init__(
        self,
        root: Path,
        default: ServedIndex,
        opener: Callable[[Path], ServedIndex],
        create_empty: Callable[[Path], None],
        release: Callable[[ServedIndex], None] = lambda index: index.close(),
    ) -> None:
        self.root = root
        self._opener = opener
        self._release = release
        self._create_empty = create_empty
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {
            DEFAULT_COLLECTION: _Held(
                CollectionInfo(name=DEFAULT_COLLECTION, description="", created="", path=default.path), default
            )
        }
        self._clear_trash()
        for found in collection_folders(root):
            self._discover(found.name)

    def _clear_trash(self) -> None:
        for path in self.root.glob(f"{_TRASH}*") if self.root.is_dir() else ():
            shutil.rmtree(path, ignore_errors=True)

    def _discover(self, name: str) -> _Held | None:
        """Open the collection folder ``name`` if it holds an index (caller holds no lock on it)."""
        path = self.root / name
        if folder.current(path) is None:
            if path.is_dir():
                log.warning("collection folder %s holds no index: not served (build it or remove it)", path)
            return None
        try:
            index = self._opener(path)
        except ZhsearchError as exc:
            log.error("collection %s is not served: %s", name, exc)
            return None
        except FileNotFoundError:
            if path.exists():
                raise
            return None  # deleted (renamed aside) between the check above and the open: it is gone
        held = _Held(read_info(name, path), index)
        with self._lock:
            if name in self._held:  # opened meanwhile by another request
                self._release(index)
                return self._held[name]
            self._held[name] = held
        return held

    def _find(self, name: str) -> _Held:
        with self._lock:
            held = self._held.get(name)
        if held is None and NAME.fullmatch(name):
            held = self._discover(name)
        if held is None:
            raise NotFoundError(f"no collection named {name[:80]!r}")
        return held

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._held

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def info(self, name: str) -> CollectionInfo:
        return self._find(name).info

    def infos(self) -> list[CollectionInfo]:
        with self._lock:
            return [self._held[name].info for name in sorted(self._held)]

    @contextmanager
    def using(self, name: str) -> Iterator[ServedIndex]:
        """The collection's index, held open (a delete waits) until the block ends."""
        held = self._find(name)
        with held.idle:
            held.users += 1
        try:
            with self._lock:
                gone = self._held.get(name) is not held
            if gone:
                raise NotFoundError(f"no collection named {name[:80]!r}")
            yield held.index
        finally:
            with held.idle:
                held.users -= 1
                held.idle.notify_all()
                finish, held.finish = (held.finish, None) if held.users == 0 else (None, held.finish)
            if finish is not None:
                finish()

    def get(self, name: str) -> ServedIndex:
        """The collection's index, not held (for a caller that outlives no delete: tests, warm-up)."""
        return self._find(name).index

    def create(self, name: str, description: str = "") -> CollectionInfo:
        """A new, empty collection (``ConflictError`` if the name is taken)."""
        check_name(name)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInputError(f"description: at most {MAX_DESCRIPTION} characters")
        with self._lock:
            if name in self._held or (self.root / name).exists():
                raise ConflictError(f"a collection named {name!r} exists")
            if len(self._held) >= MAX_COLLECTIONS:
                raise InvalidInputError(f"this server holds {MAX_COLLECTIONS} collections, the most it may")
            path = self.root / name
            path.mkdir(parents=True)
            try:
                created = datetime.now(UTC).isoformat(timespec="seconds")
                info = CollectionInfo(name=name, description=description, created=created, path=path)
                _write_info(info)
                self._create_empty(path)
                index = self._opener(path)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._held[name] = _Held(info, index)
        log.info("collection %s created", name)
        return info

    def delete(self, name: str, wait_s: float = 30.0) -> None:
        """Remove a collection and its folder, once the requests using it are done."""
        if name == DEFAULT_COLLECTION:
            raise InvalidInputError("the default collection cannot be deleted")
        held = self._find(name)
        with self._lock:
            if self._held.get(name) is not held:
                raise NotFoundError(f"no collection named {name[:80]!r}")
            del self._held[name]  # new requests see no such collection from here on
        deadline = time.monotonic() + wait_s
        with held.idle:
            while held.users and time.monotonic() < deadline:
                held.idle.wait(deadline - time.monotonic())
            if held.users:  # a long request (a large upload): it finishes, then the last one out closes
                held.finish = lambda: self._finish(held)
                log.info("collection %s deleted; closed when its %d requests finish", name, held.users)
                return
        self._finish(held)

    def _finish(self, held: _Held) -> None:
        """Close a deleted collection and remove its folder (renamed aside first: a crash leaves no half)."""
        self._release(held.index)
        trash = self.root / f"{_TRASH}{held.info.name}-{time.time_ns()}"
        held.info.path.replace(trash)
        shutil.rmtree(trash, ignore_errors=True)
        log.info("collection %s deleted", held.info.name)

    def close(self) -> None:
        """Close every collection but the default (its opener closes it)."""
        with self._lock:
            held = [h for name, h in self._held.items() if name != DEFAULT_COLLECTION]
            self._held = {DEFAULT_COLLECTION: self._held[DEFAULT_COLLECTION]}
        for one in held:
            self._release(one.index)


def empty_index(embedder: Embedder) -> Callable[[Path], None]:
    """What creates an empty single-node index for ``embedder`` in a folder (``Collections.create``)."""
    from .writing.build import build_empty

    def create(path: Path) -> None:
        build_empty(path, embedder)

    return create


__all__ = [
    "DEFAULT_COLLECTION",
    "CollectionInfo",
    "Collections",
    "check_name",
    "collection_dir",
    "collection_folders",
    "empty_index",
]

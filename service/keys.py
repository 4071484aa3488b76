"""Who is calling: named API keys, their groups and what each may do in each collection.

The keys file (``ZHSEARCH_KEYS_FILE``, written by ``zhsearch keys``) is JSON::

    {"keys": [{"name": "hr-bot", "hash": "sha256:…", "groups": ["hr"],
               "collections": {"handbook": "write", "faq": "read"}, "admin": false}]}

Secrets are stored as SHA-256 digests: a key is 256 random bits, so a fast hash is
enough to make the file useless to whoever reads it, and a lookup costs one hash.
``groups: ["*"]`` reads every document; a collection named ``"*"`` means every
collection, those created later too. ``write`` on a collection reads it and sees
every document in it: its writers manage it, ``access`` restricts its readers.
``admin`` creates and deletes collections and reads ``/metrics``.

``ZHSEARCH_API_KEY`` (admin, writes everywhere) and ``ZHSEARCH_READ_KEY`` (reads
everything) keep working beside the file, as before. With no key of any kind,
every local caller may do everything (``Settings.write_policy`` still refuses writes
on a public address). A file that changes is read again on the next request; one
that no longer reads refuses every request that needs it (503), it never falls open.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from index import InvalidInputError, Settings, ZhsearchError, check_access

log = logging.getLogger("zhsearch.keys")

Right = Literal["read", "write"]
ALL = "*"
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class KeysUnavailableError(ZhsearchError):
    code = "unavailable"


@dataclass(frozen=True)
class Caller:
    """A request's caller: its name, the groups it reads (None: every document), its rights."""

    name: str
    groups: frozenset[str] | None = None
    collections: Mapping[str, Right] = field(default_factory=dict)
    admin: bool = False
    #: No key was sent (or none that counts): a refusal asks for one (401), not for another right (403).
    anonymous: bool = False

    def right(self, collection: str) -> Right | None:
        return self.collections.get(collection) or self.collections.get(ALL)

    def may_read(self, collection: str) -> bool:
        return self.right(collection) is not None

    def may_write(self, collection: str) -> bool:
        return self.right(collection) == "write"

    def groups_in(self, collection: str) -> frozenset[str] | None:
        """The groups whose documents this caller reads in ``collection`` (None: every document)."""
        return None if self.may_write(collection) else self.groups


#: No keys configured: a local caller may do anything.
EVERYONE = Caller("anyone", None, {ALL: "write"}, admin=True)
API_KEY = Caller("api-key", None, {ALL: "write"}, admin=True)
READ_KEY = Caller("read-key", None, {ALL: "read"})
#: Reads are open (an API key but no read key, as before): anyone reads everything.
OPEN_READS = Caller("anyone", None, {ALL: "read"}, anonymous=True)


def digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return "zhs_" + secrets.token_urlsafe(32)


def _entry(raw: Any, where: str) -> tuple[str, Caller]:
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where}: each key is an object")
    unknown = set(raw) - {"name", "hash", "groups", "collections", "admin", "created"}
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
        raise InvalidInputError(f"{where}: name: 1-64 characters of A-Z a-z 0-9 _ . -")
    hashed = raw.get("hash")
    if not isinstance(hashed, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", hashed):
        raise InvalidInputError(f"{where} ({name}): hash: sha256:<64 hex digits> (`zhsearch keys add` writes it)")
    groups_raw = raw.get("groups", [])
    groups = None if groups_raw == [ALL] else frozenset(check_access(groups_raw, f"{where} ({name}): groups"))
    rights = raw.get("collections", {})
    if not isinstance(rights, dict) or any(v not in ("read", "write") for v in rights.values()):
        raise InvalidInputError(f'{where} ({name}): collections: {{"name": "read" | "write", …}}')
    admin = raw.get("admin", False)
    if not isinstance(admin, bool):
        raise InvalidInputError(f"{where} ({name}): admin: true or false")
    return hashed, Caller(name, groups, dict(rights), admin)


def read_keys_file(path: Path) -> dict[str, Caller]:
    """The callers of a keys file, by hashed secret (``InvalidInputError`` for a file that does not read)."""
    try:
        body = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"keys file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InvalidInputError(f"keys file {path}: not JSON ({exc})") from exc
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        raise InvalidInputError(f'keys file {path}: {{"keys": [...]}}')
    found: dict[str, Caller] = {}
    names: set[str] = set()
    for i, raw in enumerate(keys):
        hashed, caller = _entry(raw, f"keys file {path}, key {i + 1}")
        if caller.name in names or hashed in found:
            raise InvalidInputError(f"keys file {path}: key {caller.name!r} (or its secret) appears twice")
        names.add(caller.name)
        found[hashed] = caller
    return found


class KeyRing:
    """The configured keys; ``caller`` maps an ``Authorization`` header to a ``Caller`` (None: 401)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.keys_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, Caller] = {}
        self._broken: str | None = None
        if self.path is not None:
            self._stamp = self._stat()  # before reading: a change meanwhile is read at the next request
            self._keys = read_keys_file(self.path)  # a server does not start on a file it cannot read
            log.info("%d API keys from %s", len(self._keys), self.path)

    @property
    def configured(self) -> bool:
        """Whether any key is configured (else every local caller is ``EVERYONE``)."""
        s = self.settings
        return self.path is not None or s.api_key is not None or s.read_key is not None

    @property
    def groups_enforced(self) -> bool:
        """Whether some caller may see less than every document (per-document access applies)."""
        return self.path is not None

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino  # a rewrite replaces the file: a new inode

    def _current(self) -> dict[str, Caller]:
        """The file's keys, read again when it changed since."""
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._keys, self._broken = read_keys_file(self.path), None  # type: ignore[arg-type]
                        log.info("keys file %s read again: %d keys", self.path, len(self._keys))
                    except InvalidInputError as exc:
                        self._keys, self._broken = {}, str(exc)
                        log.error("%s: every request that needs a key is refused until it is fixed", exc)
                    self._stamp = stamp
        if self._broken:  # the reason is in the log: a caller without a valid key learns nothing of the file
            raise KeysUnavailableError("the server's keys file does not read; its log says why")
        return self._keys

    def caller(self, authorization: str) -> Caller | None:
        s = self.settings
        if not self.configured:
            return EVERYONE
        scheme, _, token = authorization.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token:
            if s.api_key is not None and secrets.compare_digest(token.encode(), s.api_key.encode()):
                return API_KEY
            if s.read_key is not None and secrets.compare_digest(token.encode(), s.read_key.encode()):
                return READ_KEY
            if self.path is not None:
                found = self._current().get(digest(token))
                if found is not None:
                    return found
        if self.path is None and s.read_key is None:
            return OPEN_READS  # an API key alone guards writes only, as before
        return None


def add_key(
    path: Path,
    name: str,
    *,
    groups: list[str],
    collections: Mapping[str, Right],
    admin: bool = False,
) -> str:
    """Add a key to the keys file (created if missing, written atomically, readable by its owner
    only); returns the secret, which is stored nowhere."""
    secret = new_secret()
    entry = {"name": name, "hash": digest(secret), "groups": groups, "collections": dict(collections), "admin": admin}
    _entry(entry, "new key")
    with _editing(path):
        body = {"keys": []} if not path.exists() else json.loads(path.read_text("utf-8"))
        if any(k.get("name") == name for k in body["keys"]):
            raise InvalidInputError(f"a key named {name!r} exists; remove it first (`zhsearch keys remove {name}`)")
        body["keys"].append(entry)
        _write(path, body)
    return secret


def remove_key(path: Path, name: str) -> None:
    with _editing(path):
        body = json.loads(path.read_text("utf-8"))
        kept = [k for k in body["keys"] if k.get("name") != name]
        if len(kept) == len(body["keys"]):
            raise InvalidInputError(f"no key named {name!r} in {path}")
        _write(path, {**body, "keys": kept})


@contextmanager
def _editing(path: Path) -> Iterator[None]:
    """One edit of the keys file at a time (two `zhsearch keys` at once would lose one's change)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(body, out, ensure_ascii=False, indent=2)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)

"""A running server that the command line can ask instead of opening the index itself.

``zhsearch serve`` on a loopback address writes ``server.json`` into its index folder once it is
ready (its process id and URL) and removes it when it stops. ``zhsearch search`` and ``ask``
look for that file: when the process named there is alive, they send the query to it over
127.0.0.1 and print its answer, which costs a request (milliseconds) instead of loading the
model and the index (seconds). Anything else (no file, a stale one, a server that refuses the
key or does not answer within ``TIMEOUT_S``) and the command opens the index itself, as before.
``--no-server`` (``ZHSEARCH_NO_SERVER=1``) never asks a server,.

A key for a keyed server comes from ``ZHSEARCH_READ_KEY`` or ``ZHSEARCH_API_KEY``. Only loopback
URLs are ever read from the file, only from a file the command's own user owns (written 0600), naming
this very folder (not a copy's), and only while the process it names is a live ``zhsearch serve`` of
that user (a server killed outright leaves the file; its pid may be reused): the command line sends
nothing off this machine, nor its key to another user's process. The server searches with the
index's own model: ``--model`` applies to a command that opens the index itself.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

FILE = "server.json"
TIMEOUT_S = 30.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def advertise(index_dir: Path, host: str, port: int) -> Path | None:
    """Write ``server.json`` for a server on a loopback address (None for any other address)."""
    if host not in _LOOPBACK and not host.startswith("127."):
        return None
    url = f"http://{'[::1]' if host == '::1' else '127.0.0.1' if host == 'localhost' else host}:{port}"
    target = index_dir / FILE
    scratch = target.with_name(f".{FILE}.{os.getpid()}")
    record = {"pid": os.getpid(), "url": url, "index_dir": str(index_dir.resolve())}
    try:
        with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(scratch, target)
    except OSError:
        return None  # a read-only index folder: the command line opens the index itself
    return target


def withdraw(index_dir: Path) -> None:
    """Remove ``server.json`` if this process wrote it."""
    target = index_dir / FILE
    try:
        if json.loads(target.read_text(encoding="utf-8")).get("pid") == os.getpid():
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find(index_dir: Path) -> str | None:
    """The URL of a live server of ``index_dir`` on this machine, or None."""
    path = index_dir / FILE
    try:
        if path.stat().st_uid != os.getuid():
            return None  # written by another user: the command would send them its key
        record = json.loads(path.read_text(encoding="utf-8"))
        pid, url, served = int(record["pid"]), str(record["url"]), str(record["index_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if served != str(index_dir.resolve()):
        return None  # a copy of the folder (cp -a): the server serves the original
    if urlsplit(url).hostname not in ("127.0.0.1", "::1") and not str(urlsplit(url).hostname).startswith("127."):
        return None
    return url if _serving(pid) else None


def _serving(pid: int) -> bool:
    """Whether ``pid`` is a live ``zhsearch serve`` of this user (a stale file's pid may have been reused)."""
    try:
        os.kill(pid, 0)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (ProcessLookupError, PermissionError):
        return False  # gone, or another user's process
    except OSError:
        return True  # no /proc here: the live pid of this user is the evidence
    words = [part.decode(errors="replace") for part in command]
    return "serve" in words and any("zhsearch" in word or word == "service.cli" for word in words)


def call(url: str, path: str, payload: dict[str, Any], collection: str | None = None) -> dict[str, Any] | None:
    """POST ``payload`` to the server's ``/v1{path}`` (or a collection's); its JSON answer, or None when the
    server cannot answer it (the caller then opens the index itself). An error the server gives for the query
    itself (4xx other than 401/403/404) is raised as ``ServerError``."""
    prefix = f"/v1/collections/{quote(collection, safe='')}" if collection else "/v1"
    request = urllib.request.Request(
        url + prefix + path,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json", **_authorization()},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (loopback only)
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 413, 422):
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise ServerError(message) from exc
        return None  # 401/403/404/5xx: not this server's to answer for us
    except (urllib.error.URLError, OSError, ValueError):
        return None


class ServerError(Exception):
    """The server refused the query itself (a bad query, k out of range): the message says why."""


def _authorization() -> dict[str, str]:
    key = os.environ.get("ZHSEARCH_READ_KEY") or os.environ.get("ZHSEARCH_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}

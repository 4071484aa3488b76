"""Reading an untrusted file in a child process, inside a time and a memory budget.

A parser can be made to work for hours (a PDF whose pages share one huge content
stream) or to allocate gigabytes (a DOCX holding a zero-filled image): limits the
parser checks itself (``budgets``) stop the known cases, and this stops the rest.
Each upload is parsed in a process forked from a small fork server (so the server's
threads, model and index are not copied), under ``RLIMIT_AS``; the caller waits at
most ``parse_seconds`` for its documents, then kills it. At most ``SLOTS`` parses
run at once; a caller waits for a slot within the same time budget.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from multiprocessing.connection import Connection
from typing import Any

from ..errors import DocumentError, IndexBusyError, TooLargeError, ZhsearchError
from .budgets import DEFAULT, Budgets
from .ingest import Document, JsonFields, parse_bytes

#: Parses at once: one per core, so uploads cannot starve searches of CPU.
SLOTS = max(1, os.cpu_count() or 1)
_slots = threading.BoundedSemaphore(SLOTS)
_context_lock = threading.Lock()
_context: Any = None


def _fork_server() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # the parsers (and the OCR engine's modules, not its models) are imported once, in the fork server
            context.set_forkserver_preload(["index.text.ingest", "index.text.formats", "rapidocr"])
            _context = context
    return _context


def _child(sender: Connection, name: str, raw: bytes, fields: JsonFields | None, budgets: Budgets) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (budgets.parse_memory_bytes, budgets.parse_memory_bytes))
        sender.send(("ok", parse_bytes(name, raw, fields, budgets=budgets)))
    except ZhsearchError as exc:
        sender.send(("error", exc))
    except MemoryError:
        sender.send(("memory", None))
    except RecursionError:
        sender.send(("error", DocumentError(f"{name}: nested too deeply to read")))
    except Exception as exc:  # a parser's own failure on a malformed file: the file is bad, not the server
        sender.send(("error", DocumentError(f"{name}: cannot be read ({type(exc).__name__})")))
    finally:
        sender.close()


def parse_isolated(
    name: str, raw: bytes, fields: JsonFields | None = None, budgets: Budgets = DEFAULT
) -> list[Document]:
    """``ingest.parse_bytes`` in a child process within ``budgets`` (time and memory): blocks, so call it
    from a worker thread, never from an event loop."""
    seconds = budgets.parse_seconds
    if not _slots.acquire(timeout=seconds):
        raise IndexBusyError(f"{SLOTS} uploads are being read already; try again")
    try:
        context = _fork_server()
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(sender, name, raw, fields, budgets), daemon=True)
        child.start()
        sender.close()
        try:
            if not receiver.poll(seconds):
                raise TooLargeError(
                    f"{name}: reading it took longer than {seconds:g} s; the limit is ZHSEARCH_PARSE_SECONDS"
                )
            try:
                status, payload = receiver.recv()
            except (EOFError, OSError):
                status, payload = "memory", None  # killed: the address-space limit is the likely cause
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            receiver.close()
    finally:
        _slots.release()
    if status == "ok":
        found: list[Document] = payload
        return found
    if status == "memory":
        limit = budgets.parse_memory_bytes // (1024 * 1024)
        raise TooLargeError(f"{name}: reading it needs more than {limit} MB of memory (ZHSEARCH_PARSE_MEMORY_MB)")
    raise payload

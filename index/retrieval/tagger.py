"""jieba's part-of-speech tagger, with its dictionary read from SQLite a word at a time.

Answers tag every question (``required_terms``) and some sentences (``carries``) with jieba's
``posseg``. Loaded the usual way, jieba spends 1–2 s and ~120 MB before the first word: a marshal
cache of ~580k words and prefixes, and its tag table parsed from ``dict.txt`` when
``jieba.posseg`` is imported. A cold ``zhsearch ask`` is mostly that wait.

Here the same two tables live in one SQLite file (``<cache>/jieba/dict-<key>.sqlite``, built once
from ``dict.txt`` as jieba reads it, published by atomic rename), and the tagger looks up
only the words it meets, remembering them. jieba's segmentation and HMM code run unchanged; what
changes is where its ``FREQ`` and ``word_tag_tab`` mappings read from. Both are attributes jieba
documents by use (``jieba.get_FREQ``, ``POSTokenizer.word_tag_tab``), stable since 0.39.
tests/test_tagger.py checks that the words and tags equal stock jieba's.

Without a cache folder (or when the file can be neither read nor built) the tagger is stock jieba,
loaded eagerly.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..models.cache import lock, package_version

log = logging.getLogger(__name__)

#: Words and flags of a text.
Tag = Callable[[str], list[tuple[str, str]]]

#: Bump when the file's layout changes.
LAYOUT = 1
#: How many looked-up words a table remembers before starting over.
REMEMBERED = 200_000

_lock = threading.Lock()  # jieba's tagger state is not thread-safe: one text at a time
_taggers: dict[Path | None, Tag] = {}
_cache_dir: Path | None = None


def configure(cache_dir: Path | None) -> None:
    """Where ``tag`` keeps its dictionary file from now on (None: stock jieba)."""
    global _cache_dir
    _cache_dir = Path(cache_dir) if cache_dir is not None else None


def tag(text: str) -> list[tuple[str, str]]:
    """jieba's words and part-of-speech flags of ``text``."""
    with _lock:
        found = _taggers.get(_cache_dir)
        if found is None:
            found = _taggers[_cache_dir] = _load(_cache_dir)
        return found(text)


def _dictionary_path(cache_dir: Path) -> Path:
    import jieba

    stat = Path(jieba.__file__).with_name("dict.txt").stat()
    identity = f"{LAYOUT}:{package_version('jieba')}:{stat.st_size}:{stat.st_mtime_ns}"
    return Path(cache_dir) / "jieba" / f"dict-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.sqlite"


def ensure_tagger(cache_dir: Path, *, rebuild: bool = False) -> Path:
    """The dictionary file for the installed jieba, built if missing (a few seconds, once per jieba);
    ``rebuild``: built again (a file that did not read)."""
    path = _dictionary_path(cache_dir)
    if path.exists() and not rebuild:
        return path
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with lock(folder / ".lock"):
            if rebuild or not path.exists():
                _build(path)
            for stale in [*folder.glob("dict-*.sqlite"), *folder.glob(".dict-*.partial")]:
                if stale != path:  # another jieba's, or a killed build's (a process reading one keeps it open)
                    stale.unlink(missing_ok=True)
    except (OSError, sqlite3.Error) as exc:
        raise ModelError(f"jieba's dictionary could not be written to {folder}: {exc}") from exc
    return path


def _word_tags(f: Any) -> dict[str, str]:
    """``dict.txt``'s word -> tag, read as ``jieba.posseg.POSTokenizer.load_word_tag`` reads it (importing
    ``jieba.posseg`` would parse it once more, for its module-level tagger)."""
    tags: dict[str, str] = {}
    with f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip().decode("utf-8")
            if line:
                try:
                    word, _, tag = line.split(" ")
                except ValueError:
                    raise ValueError(f"invalid POS dictionary entry at line {lineno}: {line}") from None
                tags[word] = tag
    return tags


def _build(path: Path) -> None:
    import jieba

    tokenizer = jieba.Tokenizer()
    freq, total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
    tags = _word_tags(tokenizer.get_dict_file())
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        with sqlite3.connect(partial) as db:
            db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq INTEGER, tag TEXT) WITHOUT ROWID")
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            db.executemany("INSERT INTO words VALUES (?, ?, ?)", ((w, f, tags.get(w)) for w, f in freq.items()))
            # a tagged word the prefix table lacks (none in jieba 0.42.1's dict.txt) still gets its tag
            db.executemany(
                "INSERT OR IGNORE INTO words VALUES (?, NULL, ?)", ((w, t) for w, t in tags.items() if w not in freq)
            )
            db.execute("INSERT INTO meta VALUES ('total', ?)", (total,))
        db.close()  # the commit above synced the file (SQLite's default synchronous=FULL)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class _Column:
    """A read-only mapping over one column of the words table, remembering what it looked up."""

    def __init__(self, db: sqlite3.Connection, column: str) -> None:
        self._db = db
        self._sql = f"SELECT {column} FROM words WHERE word = ?"
        self._seen: dict[str, Any] = {}
        self._added: dict[str, Any] = {}  # jieba's user words (add_word, load_userdict): never forgotten

    def get(self, word: str, default: Any = None) -> Any:
        try:
            value = self._added[word] if self._added and word in self._added else self._seen[word]
        except KeyError:
            if len(self._seen) >= REMEMBERED:
                self._seen.clear()
            row = self._db.execute(self._sql, (word,)).fetchone()
            value = self._seen[word] = None if row is None else row[0]
        return default if value is None else value

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.get(word) is not None

    def __getitem__(self, word: str) -> Any:
        value = self.get(word)
        if value is None:
            raise KeyError(word)
        return value

    def update(self, other: dict[str, Any]) -> None:  # how jieba's tagger takes in user words' tags
        self._added.update(other)


def _load(cache_dir: Path | None) -> Tag:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    opened = _open(cache_dir) if cache_dir is not None else None
    if opened is None:
        import jieba.posseg as posseg

        stock = posseg.POSTokenizer(jieba.dt)
        return lambda text: [(w.word, w.flag) for w in stock.cut(text)]
    db, total = opened
    tokenizer = jieba.Tokenizer(os.devnull)
    tokenizer.FREQ = _Column(db, "freq")
    tokenizer.total = total
    tokenizer.initialized = True
    posseg = _posseg_module(db)
    tagging = posseg.POSTokenizer(tokenizer)  # reads its tags from os.devnull: nothing
    tagging.word_tag_tab = _Column(db, "tag")
    return lambda text: [(w.word, w.flag) for w in tagging.cut(text)]


def _open(cache_dir: Path) -> tuple[sqlite3.Connection, int] | None:
    """The dictionary file, read-only, and jieba's word-count total; a file that does not read is built
    again, once; None (stock jieba, with a warning) when that fails too."""
    for rebuild in (False, True):
        try:
            path = ensure_tagger(cache_dir, rebuild=rebuild)
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
            try:
                (total,) = db.execute("SELECT value FROM meta WHERE key = 'total'").fetchone()
                db.execute("SELECT freq, tag FROM words LIMIT 1").fetchall()
            except BaseException:
                db.close()
                raise
            return db, int(total)
        except ModelError as exc:
            log.warning("jieba loads its whole dictionary: %s", exc)
            return None
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            log.warning("jieba's dictionary file does not read (%s)%s", exc, "" if rebuild else "; building it again")
    log.warning("jieba loads its whole dictionary")
    return None


def _posseg_module(db: sqlite3.Connection) -> Any:
    """``jieba.posseg``, imported without parsing ``dict.txt`` for its module-level tagger.

    Importing it builds ``posseg.dt`` from ``jieba.dt``'s dictionary file; during the import
    ``jieba.dt`` is an empty-dictionary stand-in, and afterwards ``posseg.dt`` is given back
    ``jieba.dt`` and the tag table from SQLite, so other callers of ``jieba.posseg.cut`` get
    stock answers. (Code reading ``jieba.dt`` in another thread during that import would see the
    stand-in; zhsearch uses jieba nowhere else.)
    """
    import jieba

    if "jieba.posseg" in sys.modules or jieba.dt.dictionary != jieba.DEFAULT_DICT:
        return importlib.import_module("jieba.posseg")  # already there, or over another dictionary: stock
    default = jieba.dt
    jieba.dt = jieba.Tokenizer(os.devnull)
    try:
        module = importlib.import_module("jieba.posseg")
    finally:
        jieba.dt = default
    module.dt.tokenizer = default
    module.dt.word_tag_tab = _Column(db, "tag")
    return module

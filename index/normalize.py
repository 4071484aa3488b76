"""Script normalization: one pure function used at index time and query time.

``normalize`` maps traditional, simplified and Taiwan-phrased Chinese onto one
matching form (simplified, mainland vocabulary), folds full-width ASCII and
collapses whitespace. It is for matching only: the original text is what gets
stored and shown.

OpenCC's ``tw2s`` converts characters and Taiwan character variants but keeps
Taiwan vocabulary (套用, 最佳化, 網際網路 ...), while ``tw2sp`` fixes that at
the cost of rewriting ordinary mainland words (建立→创建, 核心→内核). We run
``tw2s`` with our own small phrase dictionary (``data/tw_phrases.txt``) added to
both its segmenter and its last conversion step, then apply the same table with
simplified keys, because simplified input (民众, 网路) never meets OpenCC's
traditional keys and normalization must not depend on the script typed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import opencc

PROFILE = "tw2s+zhsearch-phrases+simplified-phrases+fold-v2"
_DICT_PATH = Path(__file__).parent / "data" / "tw_phrases.txt"
_SPACE_RE = re.compile(r"\s+")
# U+FF01..U+FF5E mirror ASCII 0x21..0x7E; U+3000 is the ideographic space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_lock = threading.Lock()


def dictionary_hash() -> str:
    """Hash of the phrase dictionary, recorded in each index manifest."""
    return hashlib.sha256(_DICT_PATH.read_bytes()).hexdigest()[:16]


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for raw in _DICT_PATH.read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            key, value = raw.split("\t")
            pairs.append((key.strip(), value.strip()))
    return pairs


def _dictionary_text() -> str:
    return "".join(f"{key}\t{value}\n" for key, value in _pairs())


@lru_cache(maxsize=1)
def _simplified_phrases() -> tuple[re.Pattern[str], dict[str, str]]:
    plain = opencc.OpenCC("t2s")
    table = {plain.convert(key): value for key, value in _pairs()}
    keys = sorted(table, key=len, reverse=True)  # longest first: 人工智慧 before 智慧型
    return re.compile("|".join(map(re.escape, keys))), table


def _absolute_files(node: object, share: Path) -> None:
    if isinstance(node, dict):
        file = node.get("file")
        if isinstance(file, str) and file.endswith(".ocd2"):
            node["file"] = str(share / file)
        for value in node.values():
            _absolute_files(value, share)
    elif isinstance(node, list):
        for value in node:
            _absolute_files(value, share)


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    share = Path(opencc.__file__).parent / "clib" / "share" / "opencc"
    config = json.loads((share / "tw2s.json").read_text(encoding="utf-8"))
    _absolute_files(config, share)
    workdir = Path(tempfile.mkdtemp(prefix="zhsearch-opencc-"))
    user_dict = workdir / "tw_phrases.txt"
    user_dict.write_text(_dictionary_text(), encoding="utf-8")
    entry = {"type": "text", "file": str(user_dict)}
    segmentation = config["segmentation"]
    segmentation["dict"] = {"type": "group", "dicts": [entry, segmentation["dict"]]}
    config["conversion_chain"][-1]["dict"]["dicts"].insert(0, entry)
    config_path = workdir / "zhsearch_tw2s.json"
    config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    # OpenCC warns on stderr that a grouped segmentation dictionary is outside
    # its JSON schema; it works, and the warning would confuse every CLI user.
    stderr_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        converter = opencc.OpenCC(str(config_path))
    finally:
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        os.close(devnull)
    return converter


def fold_width(text: str) -> str:
    """Full-width ASCII to ASCII; every whitespace run to one space; lower case."""
    return _SPACE_RE.sub(" ", text.translate(_FULLWIDTH)).strip().lower()


def to_simplified(text: str) -> str:
    """OpenCC tw2s plus the zhsearch phrase dictionary, nothing else."""
    converter = _converter()
    with _lock:  # the OpenCC object is not documented as thread-safe
        converted = converter.convert(text)
    pattern, table = _simplified_phrases()
    return pattern.sub(lambda m: table[m.group(0)], converted)


def normalize(text: str) -> str:
    """The matching form of ``text``: simplified script, mainland wording, folded."""
    return fold_width(to_simplified(text))

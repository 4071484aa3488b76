"""The default model's Unigram tokenizer, with its pieces in a Python dict (issue 29).

``tokenizers`` loads XLM-R's 250,002 pieces into a trie of hash maps: 1.2 s and ~280 MB of every
process that encodes a query (on the seed index more than half of what a cold ``zhsearch search``
costs). This runs the same pipeline with the pieces in one dict (~40 MB, ~0.1 s from the compact
file written beside the tokenizer):

- the added tokens (``<s>``, ``</s>``, ``<mask>``…) are cut out of the raw text first, as
  ``tokenizers`` does for tokens that are not normalized;
- the rest goes through the pipeline's own normalizer and pre-tokenizer, run by ``tokenizers``
  (they are cheap to build: only the model is replaced), which also maps every piece back to its
  characters in the original text;
- each split is cut by the Unigram model's Viterbi search, written to break ties exactly as
  ``tokenizers``' (pieces tried from each position in order of length, a later candidate wins only
  with a strictly higher score, a character with no piece of its own is unknown at the lowest
  score less 10, runs of unknowns fused into one);
- the template's special tokens, longest-first truncation and right padding follow.

Ids, offsets and sequence ids equal ``tokenizers``' on every text the tests and
``benchmarks/tokenizer_check.py`` compare (the shipped seeds and, when present, every question and
paragraph of DRCD, CMRC 2018 and the Python FAQ, alone and as truncated pairs). Pure Python over
immutable tables: safe to share between threads. About 4 µs a character, 3× ``tokenizers``' time,
under 1% of encoding it.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Beside the tokenizer file: ``<name>.unigram`` (this format's version in its first bytes).
MAGIC = b"zhsearch-unigram-1\n"
#: What ``tokenizers`` subtracts from the lowest piece score to score an unknown character.
UNKNOWN_PENALTY = 10.0


@dataclass(frozen=True)
class Encoded:
    """One text (or pair) tokenized: what the span reader and the encoders read of an encoding."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    #: 0 for the first text's tokens, 1 for the second's, None for the template's special tokens
    sequence_ids: list[int | None]


def _pipeline_part(config: dict[str, Any] | None, kind: str) -> Any:
    """The ``tokenizers`` normalizer or pre-tokenizer of ``config``, built on a stand-in model."""
    if config is None:
        return None
    from tokenizers import Tokenizer

    stand_in: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": config if kind == "normalizer" else None,
        "pre_tokenizer": config if kind == "pre_tokenizer" else None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"<unk>": 0}, "unk_token": "<unk>"},
    }
    built = Tokenizer.from_str(json.dumps(stand_in))
    return built.normalizer if kind == "normalizer" else built.pre_tokenizer


def _template(items: list[dict[str, Any]], specials: dict[str, Any]) -> list[tuple[int | None, list[int]]]:
    """A TemplateProcessing side as (sequence, ids) steps: (0 or 1, []) for a text, (None, ids) for a special token."""
    steps: list[tuple[int | None, list[int]]] = []
    for item in items:
        if "Sequence" in item:
            steps.append((0 if item["Sequence"]["id"] == "A" else 1, []))
        else:
            steps.append((None, [int(i) for i in specials[item["SpecialToken"]["id"]]["ids"]]))
    return steps


def supported(config: dict[str, Any]) -> bool:
    """Whether a ``tokenizer.json`` is a pipeline this module runs exactly (else ``tokenizers`` runs it)."""
    model = config.get("model") or {}
    post = config.get("post_processor") or {}
    plain = all(
        not (t.get("normalized") or t.get("lstrip") or t.get("rstrip") or t.get("single_word"))
        for t in config.get("added_tokens", [])
    )
    return (
        model.get("type") == "Unigram"
        and model.get("unk_id") is not None
        and not model.get("byte_fallback")
        and post.get("type") == "TemplateProcessing"
        and plain
    )


def _longest(pieces: Sequence[str]) -> dict[str, int]:
    """The length of the longest piece that starts with each character."""
    longest: dict[str, int] = {}
    for piece in pieces:
        if piece and len(piece) > longest.get(piece[0], 0):
            longest[piece[0]] = len(piece)
    return longest


def _write_compact(config: dict[str, Any], target: Path) -> None:
    """The pieces and scores of ``config`` in one file that loads in a fifth of the JSON's time."""
    vocab = config["model"]["vocab"]
    names = [piece for piece, _ in vocab]
    if any("\0" in piece for piece in names):
        raise OSError("a piece holds a NUL character: no compact form")
    pieces = "\0".join(names).encode("utf-8")
    header = json.dumps(
        {key: config.get(key) for key in ("normalizer", "pre_tokenizer", "post_processor", "added_tokens")}
    )
    meta = json.dumps(
        {"unk_id": config["model"]["unk_id"], "count": len(vocab), "longest": _longest(names)}, ensure_ascii=False
    ).encode("utf-8")
    scores = np.asarray([score for _, score in vocab], "<f8").tobytes()
    parts = [meta, header.encode("utf-8"), scores, pieces]
    scratch = target.with_name(f".{target.name}.{os.getpid()}")
    with open(scratch, "wb") as out:
        out.write(MAGIC)
        for part in parts:
            out.write(struct.pack("<Q", len(part)))
            out.write(part)
    os.replace(scratch, target)


class UnigramTokenizer:
    """A Unigram ``tokenizer.json`` pipeline with its pieces in a dict (see the module doc)."""

    def __init__(
        self,
        pieces: list[str],
        scores: list[float],
        unk_id: int,
        config: dict[str, Any],
        longest: dict[str, int] | None = None,
    ) -> None:
        self._id = dict(zip(pieces, range(len(pieces)), strict=True))
        self._score = scores
        self._unk_id = unk_id
        self._unk_score = min(scores) - UNKNOWN_PENALTY
        # the longest piece that starts with each character: how far Viterbi looks from a position
        self._longest = longest if longest is not None else _longest(pieces)
        self._normalizer = _pipeline_part(config.get("normalizer"), "normalizer")
        self._pre_tokenizer = _pipeline_part(config.get("pre_tokenizer"), "pre_tokenizer")
        added = {t["content"]: int(t["id"]) for t in config.get("added_tokens", [])}
        self._added = added
        self._added_pattern = (
            re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True))) if added else None
        )
        post = config["post_processor"]
        self._single = _template(post["single"], post["special_tokens"])
        self._pair = _template(post["pair"], post["special_tokens"])

    @classmethod
    def load(cls, tokenizer_file: Path) -> UnigramTokenizer | None:
        """The tokenizer of ``tokenizer_file`` (None when it is not a pipeline this module runs), from its
        compact form ``<name>.unigram``, written on first use (again if it cannot be read)."""
        compact = tokenizer_file.with_name(tokenizer_file.name + ".unigram")
        if compact.exists():
            try:
                return cls.read(compact)
            except (OSError, ValueError, KeyError, struct.error):
                pass  # written by another version, or damaged: made again from the JSON
        config = json.loads(tokenizer_file.read_text(encoding="utf-8"))
        if not supported(config):
            return None
        try:
            _write_compact(config, compact)
        except OSError:  # a read-only model folder: from the JSON each time
            vocab = config["model"]["vocab"]
            return cls([p for p, _ in vocab], [float(s) for _, s in vocab], int(config["model"]["unk_id"]), config)
        return cls.read(compact)

    @classmethod
    def read(cls, compact: Path) -> UnigramTokenizer:
        data = compact.read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"{compact} is not a {MAGIC.decode().strip()} file")
        parts: list[bytes] = []
        at = len(MAGIC)
        for _ in range(4):
            (size,) = struct.unpack_from("<Q", data, at)
            parts.append(data[at + 8 : at + 8 + size])
            at += 8 + size
        meta, header, scores, pieces = parts
        info = json.loads(meta)
        found = pieces.decode("utf-8").split("\0")
        if not len(found) == len(scores) // 8 == info["count"] or at != len(data):
            raise ValueError(f"{compact} does not hold the {info['count']} pieces its header names")
        return cls(
            found, np.frombuffer(scores, "<f8").tolist(), int(info["unk_id"]), json.loads(header), info["longest"]
        )

    def piece_id(self, piece: str) -> int | None:
        """The id of a piece (an added token's included), None when the vocabulary lacks it."""
        found = self._added.get(piece)
        return found if found is not None else self._id.get(piece)

    # -- the model -------------------------------------------------------------------

    def _cut(self, text: str) -> list[tuple[int, int, int]]:
        """The best pieces of one split, as (start, end, id) in characters."""
        n = len(text)
        # -inf stands for "no path ends here yet": any real candidate beats it, as tokenizers' None does
        score = [-math.inf] * (n + 1)
        score[0] = 0.0
        start = [-1] * (n + 1)
        ident = [0] * (n + 1)
        get, scores, longest = self._id.get, self._score, self._longest.get
        unk_id, unk_score = self._unk_id, self._unk_score
        for i in range(n):
            here = score[i]
            last = i + longest(text[i], 0)
            if last > n:
                last = n
            single = False
            for j in range(i + 1, last + 1):
                found = get(text[i:j])
                if found is not None:
                    candidate = scores[found] + here
                    if candidate > score[j]:
                        score[j] = candidate
                        start[j] = i
                        ident[j] = found
                    if j == i + 1:
                        single = True
            if not single:
                candidate = unk_score + here
                if candidate > score[i + 1]:
                    score[i + 1] = candidate
                    start[i + 1] = i
                    ident[i + 1] = unk_id
        cut: list[tuple[int, int, int]] = []
        unknown_end = -1  # a run of unknown characters is one token
        end = n
        while end > 0:
            begin = start[end]
            if ident[end] == self._unk_id:
                if unknown_end < 0:
                    unknown_end = end
            else:
                if unknown_end >= 0:
                    cut.append((end, unknown_end, self._unk_id))
                    unknown_end = -1
                cut.append((begin, end, ident[end]))
            end = begin
        if unknown_end >= 0:
            cut.append((0, unknown_end, self._unk_id))
        cut.reverse()
        return cut

    def _tokens(self, split: str) -> list[Any]:
        from tokenizers import Token

        tokens = []
        at = 0  # tokenizers reads a token's offsets in bytes of the split
        for begin, end, found in self._cut(split):
            piece = split[begin:end]
            size = len(piece.encode("utf-8"))
            tokens.append(Token(found, piece, (at, at + size)))
            at += size
        return tokens

    def _split(self, text: str) -> Any:
        """``text`` normalized and pre-tokenized by the pipeline's own parts."""
        from tokenizers import PreTokenizedString

        pretokenized = PreTokenizedString(text)
        if self._normalizer is not None:
            pretokenized.normalize(self._normalizer.normalize)
        if self._pre_tokenizer is not None:
            self._pre_tokenizer.pre_tokenize(pretokenized)
        return pretokenized

    def _segment_ids(self, text: str) -> list[int]:
        return [found for split, _, _ in self._split(text).get_splits() for _, _, found in self._cut(split)]

    def _segment(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        pretokenized = self._split(text)
        pretokenized.tokenize(self._tokens)
        encoding = pretokenized.to_encoding()
        return list(encoding.ids), [tuple(o) for o in encoding.offsets]

    def tokens(self, text: str, *, offsets: bool = True) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character offsets of ``text`` without the template's special tokens (``offsets`` False:
        ids alone, a third faster, and no offsets)."""
        ids: list[int] = []
        where: list[tuple[int, int]] = []
        at = 0
        matches = list(self._added_pattern.finditer(text)) if self._added_pattern is not None else []
        for match in [*matches, None]:
            begin = match.start() if match is not None else len(text)
            if begin > at and not offsets:
                ids += self._segment_ids(text[at:begin])
            elif begin > at:
                found, spans = self._segment(text[at:begin])
                ids += found
                where += [(a + at, b + at) for a, b in spans]
            if match is not None:
                ids.append(self._added[match.group()])
                if offsets:
                    where.append((match.start(), match.end()))
                at = match.end()
        return ids, where

    # -- the pipeline ----------------------------------------------------------------

    def _post(self, parts: Sequence[tuple[list[int], list[tuple[int, int]]]]) -> Encoded:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        sequence_ids: list[int | None] = []
        for sequence, special in self._pair if len(parts) == 2 else self._single:
            if sequence is None:
                ids += special
                offsets += [(0, 0)] * len(special)
                sequence_ids += [None] * len(special)
            else:
                found, where = parts[sequence]
                ids += found
                offsets += where
                sequence_ids += [sequence] * len(found)
        return Encoded(ids, offsets, sequence_ids)

    def added(self, pair: bool) -> int:
        """Special tokens the template adds to one text (or a pair)."""
        return sum(len(special) for sequence, special in (self._pair if pair else self._single) if sequence is None)

    def encode(self, text: str, max_length: int | None = None) -> Encoded:
        """``text`` with the template's special tokens, its tokens cut to fit ``max_length`` in all."""
        ids, offsets = self.tokens(text)
        if max_length is not None:
            keep = max(0, max_length - self.added(False))
            ids, offsets = ids[:keep], offsets[:keep]
        return self._post([(ids, offsets)])

    def ids(self, text: str, max_length: int | None = None) -> list[int]:
        """``encode(text, max_length).ids``, a third faster (no offsets)."""
        ids, _ = self.tokens(text, offsets=False)
        if max_length is not None:
            ids = ids[: max(0, max_length - self.added(False))]
        return self._post([(ids, [(0, 0)] * len(ids))]).ids

    def encode_pair(self, first: str, second: str, max_length: int) -> Encoded:
        """A pair in the template, cut longest-first to ``max_length`` tokens in all (as ``tokenizers``)."""
        a, b = self.tokens(first), self.tokens(second)
        limit = max(0, max_length - self.added(True))
        n1, n2 = len(a[0]), len(b[0])
        if n1 + n2 > limit:
            short, long_ = sorted((n1, n2))
            long_ = short if short > limit else max(short, limit - short)
            if short + long_ > limit:
                short = limit // 2
                long_ = short + limit % 2
            n1, n2 = (short, long_) if n1 <= n2 else (long_, short)
        return self._post([(a[0][:n1], a[1][:n1]), (b[0][:n2], b[1][:n2])])

    def batch(self, texts: Sequence[str], max_length: int, pad_id: int) -> dict[str, np.ndarray]:
        """``input_ids`` and ``attention_mask`` of ``texts``, cut to ``max_length`` and padded on the right."""
        encoded = [self.ids(text, max_length) for text in texts]
        width = max((len(ids) for ids in encoded), default=0)
        ids = np.full((len(encoded), width), pad_id, np.int64)
        mask = np.zeros((len(encoded), width), np.int64)
        for n, row in enumerate(encoded):
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

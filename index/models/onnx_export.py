"""Export the converted multilingual-e5-small to ONNX, float32 and int8.

For the ONNX Runtime backends (``index.models.onnx``). The model folder comes from
``convert.ensure_model``; the files land in its ``onnx/`` subfolder, each published
only once it embeds like the torch model. Ahead of time: ``zhsearch model --backend onnx-int8``.

Since export version 2 the float32 file is the graph of fused operators that
``onnx_optimize.build_fused_onnx`` writes from the weights (1.2-1.8x faster than
torch's export, same vectors); ``export_unfused`` keeps torch's export as the
reference it was measured against (docs/decisions.md, "Fused encoder"). Since
version 3 the float32 file takes the word-embedding table as an input (``tables``).
Version 4 quantizes the int8 file, as version 2 did, from the fused graph with its
table inside (quantized with it): version 3's int8 file, with a float32 table as an
input, cost one seed question its first rank (docs/decisions.md). Version 5 stores the
same graphs with their weights in a data file beside each (``<file>.<token>.data``, ONNX
external data), which ONNX Runtime memory-maps: an int8 session opens in 0.15 s instead of
0.55 s and holds ~160 MB less (docs/benchmarks.md, "CLI"). A record's ``sha256`` is still
that of the model as one file, so fingerprints do not change with the storage.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
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
    read_json,
    sha256_file,
    write_json,
)
from .convert import ensure_model
from .onnx_files import drop_unnamed_data, store_weights_apart
from .onnx_optimize import QUANTIZATION_EXTRA, build_fused_onnx, quantize_onnx
from .quantization import QUANTIZATION_PRESETS, cpu_quantization_preset, quantized_onnx_name
from .tables import WORD_TABLE_INPUT, word_table

__all__ = ["ensure_onnx", "export_unfused", "onnx_record"]

# sentence-transformers loads ``backend="onnx"`` models through optimum-onnx, and
# its ``export_dynamic_quantized_onnx_model`` quantizes through optimum's
# ORTQuantizer.  No optimum-onnx release works with transformers 5 (0.1.0 pins
# transformers<4.58 and fails to import with 5.x; sentence-transformers 6 needs
# transformers>=5), so the same two steps are done here with the libraries
# optimum itself drives: torch's ONNX exporter and ONNX Runtime's dynamic
# quantizer, with optimum's AutoQuantizationConfig presets.  The files land where
# and under the names sentence-transformers uses (``onnx/model.onnx``,
# ``onnx/model_qint8_<preset>.onnx``), so once optimum-onnx supports
# transformers 5, ``SentenceTransformer(folder, backend="onnx",
# model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni_ffn_out_fp32.onnx"})`` loads them.

ONNX_SUBFOLDER = "onnx"
#: What was exported from what, inside ``ONNX_SUBFOLDER`` (the conversion's own
#: record, SOURCE_RECORD, stays untouched).
ONNX_RECORD = "zhsearch_onnx.json"
ONNX_FILE = "model.onnx"
#: Bump when the export's *output* changes, so ensure_onnx() re-exports.
ONNX_EXPORT_VERSION = 5
_ONNX_OPSET = 18
# An export must embed these like the torch model does, or it is not published.
# fp32 differs from torch only by float rounding; the int8 floor only catches a
# broken quantization (retrieval quality is measured with `zhsearch eval`).
_FP32_MIN_COSINE = 0.9999
_INT8_MIN_COSINE = 0.95
_PROBE_TEXTS = (
    "query: 上半年地区生产总值是多少",
    "query: 如何在家里做一碗正宗的兰州牛肉面？",
    "passage: 香港特別行政區政府公布最新的財政預算案。",
    "query: 請問捷運板南線的末班車是幾點？",
    "passage: The central bank raised interest rates by 25 basis points.",
    "passage: 公司2023年營業收入達到1209.37億元，同比增長12.5%。",
    "query: 用Python的pandas讀取CSV檔案時出現UnicodeDecodeError怎麼辦？",
    "passage: "
    + "為了推動城市的數位轉型，市政府在二〇二三年投入約1209.37億元，用於建設智慧交通、線上政務與開放資料平台。" * 4,
)


def _onnx_entry(folder: Path, file_name: str) -> dict[str, Any] | None:
    """The record of ``onnx/file_name`` when it is a finished export of the current weights."""
    source = read_json(folder / SOURCE_RECORD)
    record = read_json(folder / ONNX_SUBFOLDER / ONNX_RECORD)
    if (
        not source.get("sha256")
        or record.get("export_version") != ONNX_EXPORT_VERSION
        or record.get("model_sha256") != source.get("sha256")
        or record.get("converter_version") != source.get("converter_version")
    ):
        return None
    files = record.get("files")
    entry = files.get(file_name) if isinstance(files, dict) else None
    if not isinstance(entry, dict):
        return None
    path = folder / ONNX_SUBFOLDER / file_name
    data = entry.get("data_file")
    try:
        if path.stat().st_size != entry.get("size") or not isinstance(data, str):
            return None
        if (folder / ONNX_SUBFOLDER / data).stat().st_size != entry.get("data_size"):
            return None
        if sha256_file(path) != entry.get("graph_sha256"):  # the graph (KBs) names its data file
            return None
    except OSError:
        return None
    if entry.get("kind") == "qint8":  # exported with the fp32 file now on disk (same weights)
        base = files.get(ONNX_FILE) if isinstance(files, dict) else None
        if not isinstance(base, dict) or base.get("sha256") != entry.get("from_sha256"):
            return None
    return entry


def onnx_record(folder: Path, file_name: str) -> dict[str, Any]:
    """The export record of a current ``onnx/file_name``; ModelError when there is none."""
    entry = _onnx_entry(folder, file_name)
    if entry is None:
        raise ModelError(f"{folder / ONNX_SUBFOLDER / file_name} is missing or stale; run ensure_onnx()")
    return entry


def _write_record(folder: Path, update: dict[str, dict[str, Any]]) -> None:
    """Atomically add ``update`` (file name -> entry) to the ONNX record."""
    onnx_dir = folder / ONNX_SUBFOLDER
    source = read_json(folder / SOURCE_RECORD)
    record = read_json(onnx_dir / ONNX_RECORD)
    same_weights = (
        record.get("export_version") == ONNX_EXPORT_VERSION
        and record.get("model_sha256") == source.get("sha256")
        and record.get("converter_version") == source.get("converter_version")
    )
    files: dict[str, Any] = {}
    if same_weights and isinstance(record.get("files"), dict):
        files = record["files"]
    record = {
        "export_version": ONNX_EXPORT_VERSION,
        "model_sha256": source.get("sha256"),
        "converter_version": source.get("converter_version"),
        "files": {**files, **update},
    }
    tmp = onnx_dir / f".{ONNX_RECORD}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        write_json(tmp, record)
        os.replace(tmp, onnx_dir / ONNX_RECORD)
    finally:
        tmp.unlink(missing_ok=True)


def _recorded_data(onnx_dir: Path) -> set[str]:
    """The data files the ONNX record names."""
    files = read_json(onnx_dir / ONNX_RECORD).get("files")
    if not isinstance(files, dict):
        return set()
    return {e["data_file"] for e in files.values() if isinstance(e, dict) and isinstance(e.get("data_file"), str)}


def _tmp_file(onnx_dir: Path, name: str) -> Path:
    return onnx_dir / f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}.onnx"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the exporters' progress prints and warnings off stdout (the CLI prints a path there)."""
    import io
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("root", "onnxscript", "torch.onnx", "onnx_ir")]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for log in loggers:
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)


def _torch_reference(folder: Path) -> tuple[Any, dict[str, np.ndarray], np.ndarray]:
    """The torch BertModel, the probe batch and its mean-pooled, normalized embeddings."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # The weight-loading bar would land in the CLI's output.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    batch = dict(tokenizer(list(_PROBE_TEXTS), padding=True, truncation=True, max_length=512, return_tensors="np"))
    batch = {k: v.astype(np.int64) for k, v in batch.items()}
    batch.setdefault("token_type_ids", np.zeros_like(batch["input_ids"]))
    with torch.inference_mode():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    return model, batch, _mean_pool(hidden, batch["attention_mask"])


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    unit: np.ndarray = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return unit


def _onnx_cosines(path: Path, batch: dict[str, np.ndarray], reference: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feeds = {k: v for k, v in batch.items() if k in wanted}
    if WORD_TABLE_INPUT in wanted:
        feeds[WORD_TABLE_INPUT] = word_table(path.parent.parent)  # onnx/<file> in the model folder
    (hidden,) = session.run(["last_hidden_state"], feeds)
    cosines: np.ndarray = np.sum(_mean_pool(hidden, batch["attention_mask"]) * reference, axis=1)
    return cosines


def _strip_node_metadata(path: Path) -> None:
    """Drop the exporter's per-node stack traces and module paths (they name source files
    and line numbers), so the same weights and package versions give the same bytes, and
    so the same int8 file and fingerprint, on every machine."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(model, str(path))


def export_unfused(folder: Path, target: Path) -> None:
    """Torch's (dynamo) ONNX export of the model to ``target``: the unfused reference graph."""
    import torch

    model, batch, _ = _torch_reference(folder)

    class _Encoder(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # The legacy TorchScript exporter bakes the example's shapes into transformers 5's
    # attention-mask code (wrong vectors for other lengths); the dynamo exporter does not.
    args = tuple(torch.from_numpy(batch[k][:2, :16]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    batch_dim, seq_dim = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    with _quiet():
        torch.onnx.export(
            _Encoder(model).eval(),
            args,
            str(target),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            opset_version=_ONNX_OPSET,
            dynamo=True,
            dynamic_shapes={
                name: {0: batch_dim, 1: seq_dim} for name in ("input_ids", "attention_mask", "token_type_ids")
            },
            external_data=False,
            verbose=False,
        )
    _strip_node_metadata(target)


def _export_fp32(folder: Path, batch: dict[str, np.ndarray], reference: np.ndarray) -> dict[str, Any]:
    """Write onnx/model.onnx as fused operators from the weights, and verify it against torch."""
    onnx_dir = folder / ONNX_SUBFOLDER
    tmp = _tmp_file(onnx_dir, ONNX_FILE)
    stored: dict[str, Any] = {}
    try:
        build_fused_onnx(folder, tmp)
        stored = store_weights_apart(tmp, ONNX_FILE)
        cosines = _onnx_cosines(tmp, batch, reference)
        if float(cosines.min()) < _FP32_MIN_COSINE:
            raise ModelConversionError(
                f"the ONNX graph embeds unlike the torch model (min cosine {cosines.min():.6f} < {_FP32_MIN_COSINE})"
            )
        entry = {
            "kind": "fp32",
            **stored,
            "graph": "fused operators (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu)",
            "exporter": "index.models.onnx_optimize.build_fused_onnx, from model.safetensors",
            "min_cosine_vs_torch": round(float(cosines.min()), 7),
            "versions": {p: package_version(p) for p in ("onnx", "onnxruntime", "safetensors")},
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.replace(tmp, onnx_dir / ONNX_FILE)
    except BaseException:
        if stored:
            (onnx_dir / stored["data_file"]).unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return entry


def _export_qint8(
    folder: Path, preset: str, batch: dict[str, np.ndarray], reference: np.ndarray, fp32: dict[str, Any]
) -> dict[str, Any]:
    """Dynamically quantize onnx/model.onnx to int8 with ``preset`` and verify it."""
    options = QUANTIZATION_PRESETS[preset]
    name = quantized_onnx_name(preset)
    onnx_dir = folder / ONNX_SUBFOLDER
    tmp = _tmp_file(onnx_dir, name)
    whole = _tmp_file(onnx_dir, "table-inside.onnx")
    stored: dict[str, Any] = {}
    try:
        build_fused_onnx(folder, whole, table_input=False)
        with _quiet():
            excluded = quantize_onnx(whole, tmp, folder, preset)
        stored = store_weights_apart(tmp, name)
        cosines = _onnx_cosines(tmp, batch, reference)
        if float(cosines.min()) < _INT8_MIN_COSINE:
            raise ModelConversionError(
                f"the int8 model embeds unlike the torch model (min cosine {cosines.min():.4f} < {_INT8_MIN_COSINE})"
            )
        entry = {
            "kind": "qint8",
            **stored,
            "preset": preset,
            "quantization": {
                "mode": "dynamic",
                "activation_type": "QUInt8",
                **options,
                **QUANTIZATION_EXTRA,
                "float32_nodes": "feed-forward output MatMuls (BertOutput.dense)",
                "nodes_to_exclude": excluded,
            },
            "from": "the fused graph with its word-embedding table inside (quantized with it)",
            "from_sha256": fp32["sha256"],
            "min_cosine_vs_torch": round(float(cosines.min()), 5),
            "mean_cosine_vs_torch": round(float(cosines.mean()), 5),
            "versions": {p: package_version(p) for p in ("onnxruntime", "onnx")},
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.replace(tmp, onnx_dir / name)
    except BaseException:
        if stored:
            (onnx_dir / stored["data_file"]).unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
        whole.unlink(missing_ok=True)
    return entry


def ensure_onnx(
    cache_dir: Path,
    *,
    quantized: bool = False,
    preset: str | None = None,
    progress: Say | None = None,
) -> Path:
    """Path of the default model's ONNX file, exporting it once into the model folder.

    ``quantized=False`` gives ``onnx/model.onnx`` (float32); ``quantized=True``
    gives ``onnx/model_qint8_<preset>.onnx``, int8 dynamic quantization with
    ``preset`` (default: cpu_quantization_preset()).  Like ensure_model() it does
    nothing when the file is current (recorded in onnx/zhsearch_onnx.json for the
    current weights); otherwise it exports under the conversion's lock, writing to
    a temporary file that is renamed into place only once it embeds like the torch
    model, then records it.  Needs onnx and safetensors to write the graph,
    onnxruntime to quantize and verify, torch and transformers for the reference.
    """
    say = progress or noop
    folder = ensure_model(cache_dir, progress=progress)
    chosen = preset or cpu_quantization_preset()
    name = quantized_onnx_name(chosen) if quantized else ONNX_FILE
    if _onnx_entry(folder, name) is not None:
        return folder / ONNX_SUBFOLDER / name
    with lock(folder.parent / f".{DEFAULT_MODEL_NAME}.lock"):
        if _onnx_entry(folder, name) is not None:  # another process exported it while we waited
            return folder / ONNX_SUBFOLDER / name
        onnx_dir = folder / ONNX_SUBFOLDER
        onnx_dir.mkdir(exist_ok=True)
        for stale in onnx_dir.glob(".*.tmp-*"):  # leftovers of killed exports; we hold the lock
            stale.unlink(missing_ok=True)
        drop_unnamed_data(onnx_dir, _recorded_data(onnx_dir))
        t0 = time.perf_counter()
        try:
            say("loading the torch model as the reference")
            _, batch, reference = _torch_reference(folder)
            fp32 = _onnx_entry(folder, ONNX_FILE)
            if fp32 is None:
                say(f"writing {onnx_dir / ONNX_FILE} (fused operators, from the weights)")
                fp32 = _export_fp32(folder, batch, reference)
                _write_record(folder, {ONNX_FILE: fp32})
            if quantized:
                say(f"quantizing to {onnx_dir / name} (int8, dynamic, {chosen} preset)")
                _write_record(folder, {name: _export_qint8(folder, chosen, batch, reference, fp32)})
            drop_unnamed_data(onnx_dir, _recorded_data(onnx_dir))
        except ImportError as exc:
            raise ModelError(
                f"writing the model as ONNX needs onnx, onnxruntime and safetensors ({exc}); "
                "install them with: pip install onnxruntime onnx safetensors"
            ) from exc
        say(f"exported {name} in {time.perf_counter() - t0:.1f}s")
    return folder / ONNX_SUBFOLDER / name

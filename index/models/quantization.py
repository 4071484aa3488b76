"""Which int8 quantization the ONNX export applies on this CPU, and which nodes stay float32."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from ..errors import ModelConversionError, ModelError
from .cache import read_json

#: optimum's AutoQuantizationConfig presets for dynamic (is_static=False) int8
#: quantization, as sentence-transformers' export_dynamic_quantized_onnx_model
#: applies them: activations uint8 asymmetric, weights symmetric per channel.
#: avx2 stores weights as uint8 because AVX2 without VNNI multiplies u8 x s8
#: with a saturating instruction.
#:
#: One change to the presets (``nodes_to_exclude``, which they take as an
#: argument): the 12 feed-forward output projections (BertOutput.dense, the
#: 1536 -> 384 MatMuls) stay float32.  Their input is the GELU output, whose long
#: tail makes a per-tensor uint8 activation scale coarse; quantizing them costs
#: most of the int8 error.  Measured on this model: cosine to torch min/mean
#: 0.994/0.997 with the plain preset, 0.998/0.999 without those 12 MatMuls, for
#: about 1.5 ms more per query (docs/decisions.md, "Backends", for the retrieval numbers).
QUANTIZATION_PRESETS: dict[str, dict[str, Any]] = {
    "arm64": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
    "avx2": {"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
    "avx512": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
    "avx512_vnni": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
}


def quantized_onnx_name(preset: str) -> str:
    """File name of the int8 model for ``preset``.

    sentence-transformers would call the plain preset ``model_qint8_<preset>.onnx``;
    the suffix marks the float32 feed-forward outputs (see QUANTIZATION_PRESETS), so
    an export by sentence-transformers itself into this folder never collides.
    """
    if preset not in QUANTIZATION_PRESETS:
        raise ModelError(f"unknown quantization preset {preset!r} (one of {', '.join(QUANTIZATION_PRESETS)})")
    return f"model_qint8_{preset}_ffn_out_fp32.onnx"


def ffn_output_matmuls(model_path: Path, folder: Path) -> list[str]:
    """Names of the MatMul nodes whose constant weight is (intermediate, hidden): BertOutput.dense."""
    import onnx

    config = read_json(folder / "config.json")
    shape = [config.get("intermediate_size"), config.get("hidden_size")]
    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    names = [n.name for n in graph.node if n.op_type == "MatMul" and weights.get(n.input[1]) == shape]
    if len(names) != config.get("num_hidden_layers"):
        raise ModelConversionError(
            f"expected one feed-forward output MatMul per layer in {model_path.name}, found {len(names)}"
        )
    return names


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_quantization_preset(flags: set[str] | None = None, machine: str | None = None) -> str:
    """The int8 preset this CPU runs best: arm64, avx512_vnni, avx512 or avx2.

    avx2 (uint8 weights) is also the fallback for CPUs without AVX2, where ONNX
    Runtime's generic kernels handle it without the saturation risk of int8 weights.
    """
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags = _cpu_flags() if flags is None else flags
    if {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
        return "avx512_vnni"
    if {"avx512f", "avx512bw"} <= flags:
        return "avx512"
    return "avx2"

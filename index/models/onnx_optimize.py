"""Graph work on the ONNX encoder: fused graphs and int8 quantization.

``fuse_onnx`` runs ONNX Runtime's transformer optimizer (model type ``bert``) on an
export. On torch's dynamo export it fuses only the layer norms: the attention it
emits does not match the optimizer's patterns (docs/decisions.md, "Fused encoder").
``build_fused_onnx`` therefore writes the fused graph directly from the model's
weights with ONNX Runtime's fused operators (EmbedLayerNormalization, Attention,
SkipLayerNormalization, BiasGelu): 12 layers of 5 operators instead of ~40.
``quantize_onnx`` is the dynamic int8 quantization the shipped presets describe,
keeping each layer's feed-forward output MatMul in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .cache import read_json
from .quantization import QUANTIZATION_PRESETS, ffn_output_matmuls
from .tables import WORD_TABLE_INPUT

__all__ = ["QUANTIZATION_EXTRA", "build_fused_onnx", "build_fused_reader", "fuse_onnx", "quantize_onnx"]

#: ``quantize_dynamic``'s extra options, beside a preset's (recorded with each export).
QUANTIZATION_EXTRA = {
    "WeightSymmetric": True,
    "ActivationSymmetric": False,
    "EnableSubgraph": False,
    "ForceSymmetric": False,
    "MatMulConstBOnly": True,
}


def fuse_onnx(source: Path, target: Path, folder: Path) -> None:
    """Write ``source`` with ONNX Runtime's BERT fusions applied to ``target`` (``folder``: the model's config)."""
    from onnxruntime.transformers import optimizer

    config = read_json(folder / "config.json")
    model = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        use_gpu=False,
    )
    model.save_model_to_file(str(target))


def build_fused_onnx(folder: Path, target: Path, *, table_input: bool = True) -> None:
    """Write a BERT encoder of ``folder``'s weights as ONNX Runtime fused operators to ``target``.

    Inputs and output are the export's (``input_ids``, ``attention_mask``,
    ``token_type_ids`` -> ``last_hidden_state``), plus, with ``table_input``, the word-embedding
    table (``WORD_TABLE_INPUT``, 250k x 384 float32): every run is given the rows of
    ``model.safetensors`` memory-mapped, so the 367 MB table is never a private copy in the
    session (one file mapping shared by the document and reader models). Without it the table is
    in the graph (the int8 file is quantized from that form). The attention mask becomes each
    row's length (EmbedLayerNormalization's ``mask_index``), so padding must be on
    the right, as the tokenizer pads.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = read_json(folder / "config.json")
    if config.get("hidden_act") != "gelu" or config.get("model_type", "bert") != "bert":
        raise ValueError(f"build_fused_onnx writes BERT encoders with exact GELU, not {config.get('model_type')}")
    weights = {
        k.removeprefix("bert."): v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()
    }
    eps = float(config.get("layer_norm_eps", 1e-12))
    ms = "com.microsoft"
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def w(key: str) -> np.ndarray:
        return weights[key]

    for name in ("input_ids", "attention_mask", "token_type_ids"):
        nodes.append(helper.make_node("Cast", [name], [f"{name}_i32"], to=TensorProto.INT32))
    nodes.append(
        helper.make_node(
            "EmbedLayerNormalization",
            [
                "input_ids_i32",
                "token_type_ids_i32",
                # fed at run time from model.safetensors, memory-mapped (``tables.word_table``)
                WORD_TABLE_INPUT if table_input else init("word_embeddings", w("embeddings.word_embeddings.weight")),
                init("position_embeddings", w("embeddings.position_embeddings.weight")),
                init("token_type_embeddings", w("embeddings.token_type_embeddings.weight")),
                init("embeddings_ln_gamma", w("embeddings.LayerNorm.weight")),
                init("embeddings_ln_beta", w("embeddings.LayerNorm.bias")),
                "attention_mask_i32",
            ],
            ["hidden_0", "mask_index"],
            domain=ms,
            epsilon=eps,
        )
    )

    nodes += _fused_layers(config, w, init, "mask_index")
    last = f"hidden_{int(config['num_hidden_layers'])}"
    nodes.append(helper.make_node("Identity", [last], ["last_hidden_state"]))
    dims = ["batch", "sequence"]
    table = w("embeddings.word_embeddings.weight").shape
    graph = helper.make_graph(
        nodes,
        "zhsearch_fused_bert",
        [
            *(
                helper.make_tensor_value_info(n, TensorProto.INT64, dims)
                for n in ("input_ids", "attention_mask", "token_type_ids")
            ),
            *([helper.make_tensor_value_info(WORD_TABLE_INPUT, TensorProto.FLOAT, list(table))] if table_input else []),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, int(config["hidden_size"])])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)], producer_name="zhsearch"
    )
    onnx.save(model, str(target))


def _fused_layers(
    config: dict[str, Any], w: Callable[[str], np.ndarray], init: Callable[[str, np.ndarray], str], mask: str
) -> list[Any]:
    """The encoder layers as fused operators, from ``hidden_0`` to ``hidden_<layers>`` (``mask``: the
    Attention operator's mask input)."""
    from onnx import helper

    eps = float(config.get("layer_norm_eps", 1e-12))
    ms = "com.microsoft"
    nodes: list[Any] = []

    def linear(x: str, name: str, key: str) -> Any:
        """x @ W^T for the torch Linear ``key``, its bias left to the next fused operator."""
        return helper.make_node("MatMul", [x, init(f"{name}_w", w(key + ".weight").T)], [name], name=name)

    def add_and_norm(x: str, skip: str, out: str, name: str, dense: str, norm: str) -> Any:
        """LayerNorm(x + dense bias + skip) as one SkipLayerNormalization."""
        inputs = [x, skip, init(f"{name}_gamma", w(norm + ".weight")), init(f"{name}_beta", w(norm + ".bias"))]
        inputs.append(init(f"{name}_bias", w(dense + ".bias")))
        return helper.make_node("SkipLayerNormalization", inputs, [out], domain=ms, epsilon=eps)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        x = f"hidden_{i}"
        qkv_w = np.concatenate([w(p + f"attention.self.{t}.weight").T for t in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w(p + f"attention.self.{t}.bias") for t in ("query", "key", "value")])
        heads = int(config["num_attention_heads"])
        qkv = [x, init(f"l{i}_qkv_w", qkv_w), init(f"l{i}_qkv_b", qkv_b), mask]
        nodes += [
            helper.make_node("Attention", qkv, [f"l{i}_attn"], domain=ms, num_heads=heads),
            linear(f"l{i}_attn", f"l{i}_attn_out", p + "attention.output.dense"),
            add_and_norm(
                f"l{i}_attn_out",
                x,
                f"l{i}_h1",
                f"l{i}_ln1",
                p + "attention.output.dense",
                p + "attention.output.LayerNorm",
            ),
            linear(f"l{i}_h1", f"l{i}_ffn_in", p + "intermediate.dense"),
            helper.make_node(
                "BiasGelu",
                [f"l{i}_ffn_in", init(f"l{i}_ffn_in_b", w(p + "intermediate.dense.bias"))],
                [f"l{i}_gelu"],
                domain=ms,
            ),
            linear(f"l{i}_gelu", f"l{i}_ffn_out", p + "output.dense"),
            add_and_norm(
                f"l{i}_ffn_out", f"l{i}_h1", f"hidden_{i + 1}", f"l{i}_ln2", p + "output.dense", p + "output.LayerNorm"
            ),
        ]
    return nodes


def build_fused_reader(weights: dict[str, np.ndarray], config: dict[str, Any], target: Path) -> None:
    """Write the span reader (``models.span``) as fused operators to ``target``.

    Inputs: ``inputs_embeds`` (the word vectors, looked up outside the graph) and ``attention_mask``
    (right padding); outputs ``start_logits`` and ``end_logits``. ``weights`` are BERT's names for
    the position and token-type embeddings, the embedding layer norm and ``config``'s layers, plus
    ``qa.weight`` (2 x hidden) and ``qa.bias``: the start/end head.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    eps = float(config.get("layer_norm_eps", 1e-12))
    hidden = int(config["hidden_size"])
    inits: list[onnx.TensorProto] = []

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def w(key: str) -> np.ndarray:
        return np.asarray(weights[key], np.float32)

    positions = init("position_embeddings", w("embeddings.position_embeddings.weight"))
    nodes = [
        helper.make_node("Shape", ["inputs_embeds"], ["length"], start=1, end=2),
        helper.make_node("Slice", [positions, init("zero", np.zeros(1, np.int64)), "length"], ["positions"]),
        helper.make_node("Add", ["inputs_embeds", "positions"], ["embedded"]),
        helper.make_node(
            "Add", ["embedded", init("token_type_0", w("embeddings.token_type_embeddings.weight")[0])], ["typed"]
        ),
        helper.make_node(
            "LayerNormalization",
            [
                "typed",
                init("embeddings_ln_gamma", w("embeddings.LayerNorm.weight")),
                init("embeddings_ln_beta", w("embeddings.LayerNorm.bias")),
            ],
            ["hidden_0"],
            axis=-1,
            epsilon=eps,
        ),
        helper.make_node("Cast", ["attention_mask"], ["mask_i32"], to=TensorProto.INT32),
    ]
    nodes += _fused_layers(config, w, init, "mask_i32")
    last = f"hidden_{int(config['num_hidden_layers'])}"
    nodes += [
        helper.make_node("MatMul", [last, init("qa_w", w("qa.weight").T)], ["qa_mm"], name="qa_head"),
        helper.make_node("Add", ["qa_mm", init("qa_b", w("qa.bias"))], ["logits"]),
        helper.make_node("Split", ["logits", init("halves", np.ones(2, np.int64))], ["start_3d", "end_3d"], axis=-1),
        helper.make_node("Squeeze", ["start_3d", init("last_axis", np.asarray([-1], np.int64))], ["start_logits"]),
        helper.make_node("Squeeze", ["end_3d", "last_axis"], ["end_logits"]),
    ]
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "zhsearch_span_reader",
        [
            helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, [*dims, hidden]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("start_logits", "end_logits")],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.producer_name = "zhsearch"
    onnx.save(model, str(target))


def quantize_onnx(source: Path, target: Path, folder: Path, preset: str) -> list[str]:
    """Quantize ``source`` to int8 into ``target`` with ``preset``; returns the MatMuls kept in float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = QUANTIZATION_PRESETS[preset]
    excluded = ffn_output_matmuls(source, folder)
    extra: dict[str, object] = dict(QUANTIZATION_EXTRA)
    graph = onnx.load(str(source), load_external_data=False).graph
    if any(node.domain == "com.microsoft" for node in graph.node):
        # Shape inference cannot type the outputs of ONNX Runtime's own operators.
        extra["DefaultTensorType"] = onnx.TensorProto.FLOAT
    quantize_dynamic(
        source,
        target,
        per_channel=options["per_channel"],
        reduce_range=options["reduce_range"],
        weight_type=getattr(QuantType, options["weight_type"]),
        nodes_to_exclude=excluded,
        extra_options=extra,
    )
    return excluded

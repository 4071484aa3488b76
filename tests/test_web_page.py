"""The question page (`GET /`) in headless Chromium against a real server with the real model.

Needs Debian's `chromium`, `chromium-driver` and `fonts-noto-cjk` (for readable screenshots);
screenshots land in `test-output/` (git-ignored).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests import server
from tests.documents import chromium_pdf
from tests.server import ROOT

pytestmark = pytest.mark.model

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = ROOT / "test-output"
WAIT_S = 60  # one /v1/ask on a CPU takes well under a second once the model is warm
DESKTOP = (1280, 900)
PHONE = (390, 844)
# The answer is a span (issue 26): 社區衛生服務中心, marked inside its sentence about 網際網路診療服務.
QUESTION = "互联网诊疗服务在哪里实现了全覆盖"


@pytest.fixture(scope="module")
def site(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `zhsearch serve` process on a copy of the real-model index; yields its base URL."""
    work = tmp_path_factory.mktemp("web-page")
    index_dir = work / "index"
    shutil.copytree(real_index, index_dir, symlinks=True)
    with server.serving(index_dir, work / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `apt-get install -y chromium chromium-driver`")
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    if not fonts.strip():
        pytest.fail("no CJK font installed (screenshots would show boxes): run `apt-get install -y fonts-noto-cjk`")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver path below, Selenium Manager never runs
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        # no name resolves but the test server's address: a page that needs a CDN fails here as it would offline
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A bounded wait that retries while the page re-renders (replaced elements go stale)."""
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))


def _open(driver: WebDriver, base: str, size: tuple[int, int], path: str = "/") -> None:
    width, height = size
    driver.set_window_size(width, height)
    # The window includes browser chrome; pin the page's viewport to exactly this size (a phone honours the
    # page's meta viewport), so the screenshots are width x height.
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.get(base + path)
    _wait(driver).until(lambda d: d.find_element(By.ID, "question").is_displayed())


def _ask(driver: WebDriver, question: str) -> str:
    """Types and submits (Enter) a question on a freshly opened page; waits for the outcome and names it."""
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question + "\n")
    return _outcome(driver)


def _outcome(driver: WebDriver) -> str:
    """Waits for the question asked to be answered (answer, no-answer or error) and names the outcome."""
    outcomes = {"answer": "answer", "no-answer": "no-answer", "error": "error"}

    def outcome(d: WebDriver) -> str | bool:
        if d.find_element(By.ID, "status").is_displayed():
            return False
        for element_id, name in outcomes.items():
            if d.find_element(By.ID, element_id).is_displayed() and (
                name == "error" or d.find_element(By.ID, "results-section").is_displayed()
            ):
                return name
        return False

    found: str = _wait(driver).until(outcome)
    return found


def _passage_with(driver: WebDriver, text: str) -> WebElement | None:
    for item in driver.find_elements(By.CSS_SELECTOR, "[data-testid=passage]"):
        if text in item.find_element(By.CSS_SELECTOR, "[data-testid=passage-text]").text:
            return item
    return None


def _marked(element: WebElement, text: str) -> bool:
    """Whether some <mark> inside element contains text."""
    return any(text in m.text for m in element.find_elements(By.TAG_NAME, "mark"))


def _link_parts(href: str) -> tuple[str, dict[str, list[str]]]:
    """A link's path and its query parameters."""
    parts = urlsplit(href)
    return parts.path, parse_qs(parts.query)


def _document_link(href: str, doc_id: str, passage_id: str, question: str, collection: str | None = None) -> bool:
    """Whether href opens the document page at this passage with the question (and the collection, but default)."""
    path, params = _link_parts(href)
    expected = {"p": [passage_id], "q": [question]} | ({"c": [collection]} if collection else {})
    return path == f"/documents/{quote(doc_id, safe='')}" and params == expected


def _squeezed(text: str) -> str:
    """Text without its whitespace (line breaks and spaces fall differently in a card and in the document)."""
    return "".join(text.split())


def _open_document(driver: WebDriver, base: str, size: tuple[int, int], path: str) -> None:
    """Opens a document page at this viewport size and waits until it has shown the document or an error."""
    width, height = size
    driver.set_window_size(width, height)
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.get(base + path)
    _wait(driver).until(lambda d: d.find_element(By.ID, "document").is_displayed() or _error_shown(d))


def _error_shown(driver: WebDriver) -> bool:
    return bool(driver.find_element(By.ID, "error").is_displayed())


def _hit_in_view(driver: WebDriver) -> bool:
    """Whether the first marked piece of the passage lies wholly inside the viewport."""
    box = driver.execute_script(
        "const r = document.getElementById('hit').getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, w: innerWidth, h: innerHeight};"
    )
    return bool(0 <= box["top"] < box["bottom"] <= box["h"] and 0 <= box["left"] and box["right"] <= box["w"])


def _screenshot(driver: WebDriver, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(OUTPUT / name)), name


def test_answer_evidence_highlights_and_script_toggle(site: str, browser: WebDriver) -> None:
    _open(browser, site, DESKTOP)
    assert _ask(browser, QUESTION) == "answer"
    answer = browser.find_element(By.ID, "answer-text").text
    assert "社區衛生服務中心" in answer and len(answer) <= 20
    evidence = browser.find_element(By.ID, "answer-evidence")
    assert answer in evidence.find_element(By.CSS_SELECTOR, "[data-testid=answer-span]").text
    assert "網際網路診療服務" in evidence.text and "全覆蓋" in evidence.text  # the sentence it stands in
    assert _marked(evidence, "網際網路診療")

    passage = _passage_with(browser, "網際網路診療")
    assert passage is not None and passage.is_displayed()
    assert _marked(passage, "網際網路診療")
    link = passage.find_element(By.CSS_SELECTOR, "[data-testid=passage-link]").get_attribute("href")
    passage_id = passage.get_attribute("data-passage-id")
    doc_id = httpx.get(f"{site}/v1/passages/{passage_id}", timeout=60).json()["doc_id"]
    assert link.startswith(f"{site}/documents/") and _document_link(link, doc_id, passage_id, QUESTION)
    _screenshot(browser, "web-desktop.png")

    # The toggle converts each highlighted and plain segment separately, so <mark> survives conversion.
    # Simplified display uses the phrase table: a mainland reader sees 互联网诊疗, not 网际网路诊疗.
    simplified = httpx.post(
        f"{site}/v1/convert", json={"texts": ["網際網路診療"], "to": "simplified"}, timeout=60
    ).json()
    expected = simplified["texts"][0]
    assert expected == "互联网诊疗"
    passage_id = passage.get_attribute("data-passage-id")
    browser.find_element(By.CSS_SELECTOR, "label[for=script-simplified]").click()
    selector = f"[data-testid=passage][data-passage-id='{passage_id}']"
    _wait(browser).until(lambda d: _marked(d.find_element(By.CSS_SELECTOR, selector), expected))
    text = browser.find_element(By.CSS_SELECTOR, selector).text
    assert "網際網路診療" not in text and "社区卫生服务中心" in text
    assert "社区卫生服务中心" in browser.find_element(By.ID, "answer-text").text
    assert "诊疗" in browser.find_element(By.ID, "answer-evidence").text

    browser.find_element(By.CSS_SELECTOR, "label[for=script-original]").click()
    _wait(browser).until(lambda d: _marked(d.find_element(By.CSS_SELECTOR, selector), "網際網路診療"))
    # Nothing but the page's own origin was fetched (no CDN, fonts or trackers).
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(site + "/") for url in urls), urls


def test_unanswerable_question_says_so_and_still_lists_passages(site: str, browser: WebDriver) -> None:
    _open(browser, site, DESKTOP)
    assert _ask(browser, "台北市的捷運票價是多少") == "no-answer"
    assert "找不到可信的答案" in browser.find_element(By.ID, "no-answer").text
    assert not browser.find_element(By.ID, "answer").is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=passage]")


def test_overlong_question_shows_the_api_error(site: str, browser: WebDriver) -> None:
    question = "问" * 1001
    api = httpx.post(f"{site}/v1/ask", json={"question": question}, timeout=60)
    assert api.status_code == 422
    _open(browser, site, DESKTOP)
    assert _ask(browser, question) == "error"
    shown = browser.find_element(By.ID, "error").text
    assert (
        api.json()["error"]["message"] in shown and "問題無法處理" in shown
    )  # Chinese first, the server's words after
    assert not browser.find_element(By.ID, "ask-button").get_attribute("disabled")


def test_api_docs_render_offline(site: str, browser: WebDriver) -> None:
    """Swagger UI and ReDoc come from the package: with nothing but the server reachable, both render."""
    browser.set_window_size(*DESKTOP)
    browser.get(f"{site}/docs")
    operations = _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {op.text.strip() for op in operations}
    assert {"/v1/search", "/v1/ask", "/v1/documents"} <= paths
    _screenshot(browser, "api-docs.png")
    browser.get(f"{site}/redoc")
    _wait(browser).until(lambda d: "/v1/ask" in d.page_source)  # only a rendered ReDoc holds the paths


def test_phone_layout(site: str, browser: WebDriver) -> None:
    _open(browser, site, PHONE)
    assert _ask(browser, QUESTION) == "answer"
    width = browser.execute_script("return window.innerWidth")
    assert width == PHONE[0]
    # Nothing sticks out sideways: the page never scrolls horizontally.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    button = browser.find_element(By.ID, "ask-button")
    assert button.is_displayed() and button.rect["x"] + button.rect["width"] <= width
    _screenshot(browser, "web-phone.png")


def test_api_data_is_rendered_as_text(site: str, browser: WebDriver) -> None:
    """A document whose title and text look like HTML shows up literally, never as markup."""
    doc = {"id": "xss-doc", "title": '<img id="xss" src="x">標題', "text": "捷運票價調整說明<b id='xss2'>粗體</b>。"}
    assert httpx.post(f"{site}/v1/documents", json=doc, timeout=60).status_code == 201
    try:
        _open(browser, site, DESKTOP)
        _ask(browser, "捷運票價調整說明")
        passage = _passage_with(browser, "<b id='xss2'>")
        assert passage is not None and '<img id="xss" src="x">標題' in passage.text
        assert not browser.find_elements(By.CSS_SELECTOR, "#xss, #xss2")
    finally:
        httpx.delete(f"{site}/v1/documents/xss-doc", timeout=60)


def _picker(driver: WebDriver) -> Select:
    return Select(driver.find_element(By.ID, "collection"))


def test_collection_picker_searches_the_chosen_collection(site: str, browser: WebDriver) -> None:
    """A second collection shows in the picker (kept in the URL as ?c=); a search there finds its document,
    the same search in the default collection does not."""
    word = "獨角獸專案"
    created = httpx.post(f"{site}/v1/collections", json={"name": "extra", "description": "另一個集合"}, timeout=60)
    assert created.status_code == 201, created.text
    try:
        doc = {"id": "x1", "text": f"{word}是這個集合獨有的計畫，負責新一代客服系統的開發，預計明年上線。"}
        added = httpx.post(f"{site}/v1/collections/extra/documents", json=doc, timeout=60)
        assert added.status_code == 201, added.text

        # A fresh page lists both collections, the default one chosen; picking "extra" searches there.
        _open(browser, site, DESKTOP)
        label = browser.find_element(By.XPATH, "//label[select[@id='collection']]").text
        assert "集合" in label and "Collection" in label
        _wait(browser).until(lambda d: "extra" in [o.get_attribute("value") for o in _picker(d).options])
        options = {o.get_attribute("value"): o.text for o in _picker(browser).options}
        assert list(options)[0] == "default" and options["extra"] == "extra — 另一個集合"
        assert _picker(browser).first_selected_option.get_attribute("value") == "default"
        _picker(browser).select_by_value("extra")
        _wait(browser).until(lambda d: "c=extra" in d.current_url)
        assert _ask(browser, word) in ("answer", "no-answer")
        passage = _passage_with(browser, word)
        assert passage is not None and passage.is_displayed()
        link = passage.find_element(By.CSS_SELECTOR, "[data-testid=passage-link]").get_attribute("href")
        assert _document_link(link, "x1", passage.get_attribute("data-passage-id"), word, "extra")
        assert word in httpx.get(f"{site}/v1/collections/extra/documents/x1", timeout=60).json()["text"]
        # The document page reads the document from that collection, and leads back to it.
        _open_document(browser, site, DESKTOP, link.removeprefix(site))
        assert word in browser.find_element(By.ID, "hit").text
        back = browser.find_element(By.CSS_SELECTOR, "[data-testid=back-link]").get_attribute("href")
        assert _link_parts(back) == ("/", {"q": [word], "c": ["extra"]})

        # The same search in the default collection does not find it.
        _open(browser, site, DESKTOP)
        assert _ask(browser, word) in ("answer", "no-answer")
        assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=passage]")
        assert _passage_with(browser, word) is None
        assert "c=" not in browser.current_url

        # A link reopens the collection it names.
        _open(browser, site, DESKTOP, "/?c=extra")
        _wait(browser).until(lambda d: _picker(d).first_selected_option.get_attribute("value") == "extra")
        assert _ask(browser, word) in ("answer", "no-answer")
        assert _passage_with(browser, word) is not None

        # Going back to the default collection asks the shown question there again.
        _picker(browser).select_by_value("default")

        def default_results(d: WebDriver) -> bool:
            return (
                not d.find_element(By.ID, "status").is_displayed()
                and d.find_element(By.ID, "results-section").is_displayed()
                and bool(d.find_elements(By.CSS_SELECTOR, "[data-testid=passage]"))
                and _passage_with(d, word) is None
            )

        _wait(browser).until(default_results)
        assert "c=" not in browser.current_url
    finally:
        httpx.delete(f"{site}/v1/collections/extra", timeout=60)


def test_a_result_opens_its_document_with_the_passage_marked(site: str, browser: WebDriver) -> None:
    """A passage link opens the document page (same tab): the whole text, the passage marked and in view,
    a way back to the question; it reads on a phone without sideways scrolling."""
    _open(browser, site, DESKTOP)
    assert _ask(browser, QUESTION) == "answer"
    assert _link_parts(browser.current_url)[1] == {"q": [QUESTION]}  # the question is kept in the URL
    passage = _passage_with(browser, "網際網路診療")
    assert passage is not None
    card_text = passage.find_element(By.CSS_SELECTOR, "[data-testid=passage-text]").text
    stored = httpx.get(f"{site}/v1/passages/{passage.get_attribute('data-passage-id')}", timeout=60).json()
    link = passage.find_element(By.CSS_SELECTOR, "[data-testid=passage-link]")
    assert link.get_attribute("target") in (None, "")  # the same tab: Back returns to the results
    link.click()
    _wait(browser).until(lambda d: d.find_elements(By.ID, "hit") or _error_shown(d))
    document_path = urlsplit(browser.current_url)
    assert document_path.path == f"/documents/{quote(stored['doc_id'], safe='')}"

    title = browser.find_element(By.TAG_NAME, "h1").text
    assert title.strip() and title == stored["title"]
    meta = browser.find_element(By.CSS_SELECTOR, "[data-testid=document-meta]").text
    assert stored["doc_id"] in meta and (not stored["section"] or stored["section"] in meta)
    marks = browser.find_elements(By.TAG_NAME, "mark")
    assert len(marks) == 1 and marks[0].get_attribute("id") == "hit"
    assert _squeezed(marks[0].text) == _squeezed(card_text) == _squeezed(stored["text"])
    text = browser.find_element(By.CSS_SELECTOR, "[data-testid=document-text]").text
    assert len(_squeezed(text)) > len(_squeezed(card_text))  # the whole document, not the passage alone
    assert _hit_in_view(browser)
    assert browser.execute_script("return getComputedStyle(document.getElementById('doc-text')).whiteSpace") == (
        "pre-wrap"
    )
    back = browser.find_element(By.CSS_SELECTOR, "[data-testid=back-link]").get_attribute("href")
    assert "q=" in back and _link_parts(back) == ("/", {"q": [QUESTION]})
    # Nothing but the page's own origin was fetched (no CDN, fonts or trackers).
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(url.startswith(site + "/") for url in urls), urls
    _screenshot(browser, "document-desktop.png")

    path = document_path.path + "?" + document_path.query
    _open_document(browser, site, PHONE, path)
    assert browser.execute_script("return window.innerWidth") == PHONE[0]
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert _hit_in_view(browser)
    _screenshot(browser, "document-phone.png")

    # Back to the question: it is asked again from the URL.
    _open_document(browser, site, DESKTOP, path)
    browser.find_element(By.CSS_SELECTOR, "[data-testid=back-link]").click()
    assert _outcome(browser) == "answer"
    assert browser.find_element(By.ID, "question").get_attribute("value") == QUESTION


def test_a_link_with_a_question_asks_it(site: str, browser: WebDriver) -> None:
    """/?q=… fills the question box and asks it, no typing: a result can be shared by its URL."""
    _open(browser, site, DESKTOP, "/?q=" + quote(QUESTION))
    assert _outcome(browser) == "answer"
    assert browser.find_element(By.ID, "question").get_attribute("value") == QUESTION
    assert "社區衛生服務中心" in browser.find_element(By.ID, "answer-text").text
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid=passage]")


def test_a_missing_document_says_so(site: str, browser: WebDriver) -> None:
    assert httpx.get(f"{site}/v1/documents/no-such-document", timeout=60).status_code == 404
    _open_document(browser, site, DESKTOP, "/documents/no-such-document?p=1&q=" + quote("高雄"))
    shown = browser.find_element(By.ID, "error").text
    assert "找不到這份文件" in shown and "Document not found" in shown
    assert not browser.find_element(By.ID, "document").is_displayed()
    back = browser.find_element(By.CSS_SELECTOR, "[data-testid=back-link]").get_attribute("href")
    assert _link_parts(back) == ("/", {"q": ["高雄"]})


# Two printed pages: page 1 ends in a short paragraph that is packed with page 2's first (one passage across
# the page break); page 2's last paragraph is a passage of its own.
TWO_PAGES = (
    '<!doctype html><html><head><meta charset="utf-8"><title>阿里山森林鐵路導覽</title>'
    '<style>body{font-family:"Noto Sans CJK TC",sans-serif;font-size:14pt}</style></head><body>'
    '<div style="break-after: page"><h1>阿里山森林鐵路導覽</h1><p>'
    "阿里山森林鐵路從嘉義市北門車站出發，沿途經過竹崎、獨立山與交力坪，海拔由三十公尺爬升到兩千多公尺。"
    "鐵路最初為運送檜木而建，如今成為旅客上山賞櫻與看日出的重要路線。</p><p>列車每天上午發車。</p></div>"
    "<div><p>奮起湖車站以木造便當聞名，旅客常在此停留品嚐，老街上的鐵路便當與愛玉冰是必吃的在地小吃。"
    "站旁的車庫保存著蒸汽火車頭，每年秋天舉辦火車節，吸引許多鐵道迷前來拍照。</p>"
    "<p>奮起湖的雲霧終年繚繞，步道兩旁長滿高大的柳杉與孟宗竹，清晨走在林間可以聽見藍腹鷴與冠羽畫眉的叫聲，"
    "傍晚則能在觀景台欣賞整片雲海。</p></div></body></html>"
)


def test_a_pdf_shows_its_pages(site: str, browser: WebDriver, tmp_path: Path) -> None:
    """A PDF's page starts are labelled in its text; the passage's page is in the meta line; a passage across
    the page break is marked in two pieces around the label."""
    data = chromium_pdf(tmp_path, "two-pages.pdf", TWO_PAGES).read_bytes()
    added = httpx.post(f"{site}/v1/documents", files={"file": ("two-pages.pdf", data, "application/pdf")}, timeout=120)
    assert added.status_code == 201, added.text
    doc_id = added.json()["documents"][0]["id"]
    try:
        doc = httpx.get(f"{site}/v1/documents/{doc_id}", timeout=60).json()
        assert doc["metadata"]["pages"] == 2
        by_pages = {tuple(p["pages"] or ()): p for p in doc["passages"]}
        assert {(2,), (1, 2)} <= set(by_pages), [(p["pages"], p["text"]) for p in doc["passages"]]
        second = by_pages[(2,)]
        assert "藍腹鷴" in second["text"]

        _open_document(browser, site, DESKTOP, f"/documents/{quote(doc_id)}?p={second['passage_id']}")
        meta = browser.find_element(By.CSS_SELECTOR, "[data-testid=document-meta]").text
        assert "第 2 頁" in meta and "共 2 頁" in meta and doc_id in meta
        assert browser.find_element(By.TAG_NAME, "h1").text == "阿里山森林鐵路導覽"
        labels = browser.find_elements(By.CSS_SELECTOR, "#doc-text [data-testid=page-label]")
        assert [label.text for label in labels] == ["第 1 頁", "第 2 頁"]
        hit = browser.find_element(By.ID, "hit")
        assert _squeezed(hit.text) == _squeezed(second["text"])
        follows = browser.execute_script(
            "return arguments[0].compareDocumentPosition(arguments[1]) & Node.DOCUMENT_POSITION_FOLLOWING",
            labels[1],
            hit,
        )
        assert follows  # the passage is under its page's label
        assert _hit_in_view(browser)

        across = by_pages[(1, 2)]
        _open_document(browser, site, DESKTOP, f"/documents/{quote(doc_id)}?p={across['passage_id']}")
        meta = browser.find_element(By.CSS_SELECTOR, "[data-testid=document-meta]").text
        assert "第 1–2 頁" in meta
        marks = browser.find_elements(By.CSS_SELECTOR, "#doc-text mark")
        assert len(marks) == 2 and marks[0].get_attribute("id") == "hit" and not marks[1].get_attribute("id")
        assert _squeezed("".join(m.text for m in marks)) == _squeezed(across["text"])
        label = browser.find_element(By.CSS_SELECTOR, "#doc-text [data-page='2']")
        between = browser.execute_script(
            "const [a, label, b] = arguments, after = Node.DOCUMENT_POSITION_FOLLOWING;"
            "return Boolean(a.compareDocumentPosition(label) & after && label.compareDocumentPosition(b) & after);",
            marks[0],
            label,
            marks[1],
        )
        assert between  # the page-2 label splits the mark
        _screenshot(browser, "document-pdf.png")
    finally:
        httpx.delete(f"{site}/v1/documents/{doc_id}", timeout=60)


TABLE_DOC = (
    "# 差旅費用\n\n出差的住宿與交通費用依下表辦理，超過上限須事先簽准。\n\n"
    "| 項目 | 上限 | 說明 |\n|---|---|---|\n| 住宿 | 每晚兩千元 | 含早餐 |\n| 交通 | 高鐵標準車廂 | 不含商務車廂 |\n"
    "| 膳雜 | 每日五百元 | 依實際天數 |\n\n其他費用另行規定，請洽人事室。\n"
)


def test_a_table_is_shown_as_a_table_with_its_rows_marked(site: str, browser: WebDriver) -> None:
    """A Markdown table is a <table> in the document view (header cells, no pipes or rule line); the rows of
    the passage asked for are marked, on a phone too (the table scrolls sideways, the page does not)."""
    added = httpx.post(
        f"{site}/v1/documents", files={"file": ("差旅.md", TABLE_DOC.encode(), "text/markdown")}, timeout=120
    )
    assert added.status_code == 201, added.text
    try:
        doc = httpx.get(f"{site}/v1/documents/差旅", timeout=60).json()
        rows = [p for p in doc["passages"] if "高鐵標準車廂" in p["text"]]
        assert rows and "其他費用" not in rows[0]["text"]  # text after the table never joins its rows
        for size in (DESKTOP, PHONE):
            _open_document(browser, site, size, f"/documents/{quote('差旅')}?p={rows[0]['passage_id']}")
            table = browser.find_element(By.CSS_SELECTOR, "#doc-text [data-testid=doc-table]")
            header = [cell.text for cell in table.find_elements(By.TAG_NAME, "th")]
            assert header == ["項目", "上限", "說明"]
            cells = [
                [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
                for row in table.find_elements(By.CSS_SELECTOR, "tr")[1:]
            ]
            assert cells[1] == ["交通", "高鐵標準車廂", "不含商務車廂"] and len(cells) == 3
            marked = [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "tr.hit mark")]
            assert "高鐵標準車廂" in marked
            shown = browser.find_element(By.ID, "doc-text").text
            assert "|" not in shown and "---" not in shown and "其他費用另行規定" in shown
            assert _hit_in_view(browser)
            overflow = browser.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
            assert not overflow
        _screenshot(browser, "document-table-phone.png")
    finally:
        httpx.delete(f"{site}/v1/documents/差旅", timeout=60)

"""The question page (`GET /`) in headless Chromium against a real server with the real model.

Needs Debian's `chromium`, `chromium-driver` and `fonts-noto-cjk` (for readable screenshots);
screenshots land in `test-output/` (git-ignored).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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
    assert link == f"{site}/v1/passages/{passage.get_attribute('data-passage-id')}"
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
        assert link == f"{site}/v1/collections/extra/passages/{passage.get_attribute('data-passage-id')}"
        assert word in httpx.get(link, timeout=60).json()["text"]

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

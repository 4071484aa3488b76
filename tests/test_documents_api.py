"""The document routes, limits, auth and ops endpoints, with the fake embedder."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index import Document, HashingEmbedder, Settings, Tuning, build_index
from index.writing.live import LiveIndex
from service.app import create_app

#: TestClient's default Host, "testserver", is not a name a loopback server answers for.
LOCAL = "http://127.0.0.1"

HTML = """<html><head><title>社區公告</title></head><body>
<nav>首頁 | 聯絡我們</nav>
<article><h1>社區公告</h1><p>本社區將於下週舉辦垃圾分類宣導活動，歡迎居民踴躍參加。活動地點在社區活動中心，
時間為週六上午九點。現場將提供分類指南與環保袋。</p><p>如有疑問，請洽社區服務處。</p></article>
<footer>版權所有</footer></body></html>"""


def _client(tmp_path: Path, **settings: object) -> tuple[TestClient, LiveIndex]:
    build_index([Document("base", "黃浦區的基礎文件。講經濟發展和上半年生產總值。")], tmp_path, HashingEmbedder())
    configured = Settings(index_dir=tmp_path, model="hashing", **settings)
    live = LiveIndex.open(tmp_path, HashingEmbedder(), Tuning.of(configured))  # served as opened
    app = create_app(configured, index=live)
    return TestClient(app, base_url=LOCAL), live


@pytest.fixture
def client(tmp_path: Path):
    test_client, live = _client(tmp_path)
    with test_client:
        yield test_client
    live.close()


def test_traditional_document_found_by_simplified_question(client: TestClient) -> None:
    posted = client.post("/v1/documents", json={"id": "tw", "title": "醫療", "text": "網際網路診療服務覆蓋到社區。"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["documents"][0] | {"passages": 1} == {
        "id": "tw",
        "title": "醫療",
        "metadata": {},
        "chars": 14,
        "passages": 1,
        "created": True,
    }
    hits = client.post("/v1/search", json={"query": "互联网诊疗", "k": 3}).json()["results"]
    assert hits[0]["doc_id"] == "tw"
    assert [hits[0]["text"][a:b] for a, b in hits[0]["highlights"]] == ["網際網路診療"]


def test_lifecycle(client: TestClient) -> None:
    assert client.post("/v1/documents", json={"id": "d1", "text": "第一版內容。舊區改造。"}).status_code == 201
    assert client.post("/v1/documents", json={"id": "d1", "text": "重複"}).status_code == 409
    listed = client.get("/v1/documents", params={"limit": 10}).json()
    assert listed["total"] == 2 and [d["id"] for d in listed["documents"]] == ["base", "d1"]
    replaced = client.put("/v1/documents/d1", json={"text": "第二版內容。營商環境。", "metadata": {"tag": "v2"}})
    assert replaced.status_code == 200 and replaced.json()["created"] is False
    doc = client.get("/v1/documents/d1").json()
    assert doc["text"] == "第二版內容。營商環境。" and doc["metadata"] == {"tag": "v2"}
    passage_id = doc["passages"][0]["passage_id"]
    assert client.get(f"/v1/passages/{passage_id}").json()["doc_id"] == "d1"
    assert client.put("/v1/documents/new", json={"text": "新建的。"}).status_code == 201
    assert client.delete("/v1/documents/d1").status_code == 204
    assert client.get("/v1/documents/d1").status_code == 404
    assert client.delete("/v1/documents/d1").status_code == 404
    assert client.get(f"/v1/passages/{passage_id}").status_code == 404
    hits = client.get("/v1/search", params={"q": "营商环境", "mode": "lexical"}).json()["results"]
    assert all(h["doc_id"] != "d1" for h in hits)
    assert "d1" not in [d["id"] for d in client.get("/v1/documents").json()["documents"]]


def test_generated_id(client: TestClient) -> None:
    posted = client.post("/v1/documents", json={"text": "沒有指定編號的文件。"})
    assert posted.status_code == 201 and len(posted.json()["documents"][0]["id"]) == 32


def test_multipart_upload_of_every_format(client: TestClient) -> None:
    corpus = "\n".join(json.dumps({"_id": f"j{i}", "title": "T", "text": f"第{i}篇。", "lang": "zh"}) for i in range(2))
    files = [
        ("file", ("plain.txt", "純文字文件。\n\n第二段。".encode(), "text/plain")),
        ("file", ("notes.md", "# 筆記\n\n## 小節\n\n內容。".encode(), "text/markdown")),
        ("file", ("corpus.jsonl", corpus.encode(), "application/jsonl")),
        ("file", ("page.html", HTML.encode(), "text/html")),
    ]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 201, response.text
    ids = [d["id"] for d in response.json()["documents"]]
    assert ids == ["plain", "notes", "j0", "j1", "page"]
    page = client.get("/v1/documents/page").json()
    assert "垃圾分類" in page["text"] and "版權所有" not in page["text"] and page["title"] == "社區公告"
    assert client.get("/v1/documents/j0").json()["metadata"] == {"lang": "zh"}


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        ([("file", ("x.bin", b"\x00\x01", "application/octet-stream"))], 415, "unsupported_format"),
        ([("file", ("x.pdf", b"%PDF-1.4", "application/pdf"))], 400, "bad_document"),
        ([("file", ("empty.txt", b"  \n", "text/plain"))], 422, "invalid_request"),
        ([("file", ("x.txt", bytes(range(128, 256)), "text/plain"))], 400, "bad_document"),
        ([("file", ("x.jsonl", b"{broken", "application/jsonl"))], 400, "bad_document"),
        ([("file", ("x.html", b"<html><body></body></html>", "text/html"))], 400, "bad_document"),
        ([("note", (None, b"just a field"))], 422, "invalid_request"),
    ],
)
def test_bad_uploads_change_nothing(client: TestClient, files: list, status: int, code: str) -> None:
    before = client.get("/v1/documents").json()["total"]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert client.get("/v1/documents").json()["total"] == before


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"text", "headers": {"content-type": "text/plain"}}, 415),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"json": {"text": ""}}, 422),
        ({"json": {"text": "   "}}, 422),
        ({"json": {"text": "文字", "unknown": 1}}, 422),
        ({"json": {"id": "a/b", "text": "文字"}}, 422),
        ({"json": {"id": "", "text": "文字"}}, 422),
    ],
)
def test_bad_json_documents(client: TestClient, kwargs: dict, status: int) -> None:
    response = client.post("/v1/documents", **kwargs)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}


def test_size_limits(tmp_path: Path) -> None:
    test_client, live = _client(tmp_path, max_document_bytes=100, max_upload_bytes=2000)
    with test_client as client:
        too_big_doc = client.post("/v1/documents", json={"text": "字" * 50})
        assert too_big_doc.status_code == 413 and too_big_doc.json()["error"]["code"] == "too_large"
        too_big_body = client.post("/v1/documents", json={"text": "a" * 5000})
        assert too_big_body.status_code == 413
        assert client.get("/v1/documents").json()["total"] == 1
    live.close()


def test_write_key_and_read_key(tmp_path: Path) -> None:
    test_client, live = _client(tmp_path, api_key="w-secret", read_key="r-secret")
    with test_client as client:
        doc = {"id": "k", "text": "需要金鑰。"}
        assert client.post("/v1/documents", json=doc).status_code == 401
        assert client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer wrong"}).status_code == 401
        # a valid key without the right: 403 (401 is for a missing or unknown key)
        assert client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer r-secret"}).status_code == 403
        assert client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer w-secret"}).status_code == 201
        assert client.get("/v1/search", params={"q": "金钥"}).status_code == 401
        reader = {"Authorization": "Bearer r-secret"}
        assert client.get("/v1/search", params={"q": "金钥"}, headers=reader).status_code == 200
        assert client.get("/healthz").status_code == 200
    live.close()


def test_reads_open_when_only_write_key_is_set(tmp_path: Path) -> None:
    test_client, live = _client(tmp_path, api_key="w-secret")
    with test_client as client:
        assert client.get("/v1/search", params={"q": "经济"}).status_code == 200
        assert client.delete("/v1/documents/base").status_code == 401
    live.close()


def test_filters(client: TestClient) -> None:
    client.post("/v1/documents", json={"id": "f1", "text": "舊區改造加速推進。", "metadata": {"district": "黃浦"}})
    client.post("/v1/documents", json={"id": "f2", "text": "舊區改造持續推進。", "metadata": {"district": "靜安"}})
    by_id = client.post("/v1/search", json={"query": "旧区改造", "filters": {"doc_id": ["f2"]}}).json()["results"]
    assert {h["doc_id"] for h in by_id} == {"f2"}
    by_meta = client.post(
        "/v1/search", json={"query": "旧区改造", "filters": {"metadata": {"district": "黃浦"}}}
    ).json()["results"]
    assert {h["doc_id"] for h in by_meta} == {"f1"}
    none = client.post("/v1/search", json={"query": "旧区改造", "filters": {"doc_id": []}}).json()["results"]
    assert none == []


def test_ask_shape(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "上半年生产总值", "k": 2}).json()
    assert set(body) == {"question", "mode", "answer", "passages", "took_ms"}
    assert body["passages"] and "highlights" in body["passages"][0]
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422


def test_metrics_and_request_ids(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "经济"}, headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
    text = client.get("/metrics").text
    assert 'zhsearch_requests_total{collection="default",method="GET",route="/v1/search",status="200"}' in text
    assert "zhsearch_request_seconds_bucket" in text and "zhsearch_passages" in text


def test_query_limits_are_configurable(tmp_path: Path) -> None:
    test_client, live = _client(tmp_path, max_query_chars=10, max_k=5)
    with test_client as client:
        assert client.get("/v1/search", params={"q": "字" * 11}).status_code == 422
        assert client.get("/v1/search", params={"q": "经济", "k": 6}).status_code == 422
        assert client.post("/v1/ask", json={"question": "经济", "k": 5}).status_code == 200
    live.close()


def _jsonl(*records: dict) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) if r else "" for r in records).encode() + b"\n"


def test_an_upload_is_all_or_nothing(client: TestClient) -> None:
    """A .jsonl whose second record is bad once committed the first, then answered 422."""
    bad = _jsonl({"_id": "first", "text": "第一筆。"}, {"_id": "second", "text": "  "})
    response = client.post("/v1/documents", files={"file": ("batch.jsonl", bad, "application/x-ndjson")})
    assert response.status_code == 422, response.text
    assert client.get("/v1/documents/first").status_code == 404
    twice = _jsonl({"_id": "same", "text": "一。"}, {"_id": "same", "text": "二。"})
    response = client.post("/v1/documents", files={"file": ("twice.jsonl", twice, "application/x-ndjson")})
    assert response.status_code == 422 and "more than once" in response.json()["error"]["message"]
    assert client.get("/v1/documents/same").status_code == 404
    before = client.get("/readyz").json()
    good = _jsonl({"_id": "a", "text": "甲文件。"}, {"_id": "b", "text": "乙文件。"})
    response = client.post("/v1/documents", files={"file": ("good.jsonl", good, "application/x-ndjson")})
    assert response.status_code == 201 and [d["id"] for d in response.json()["documents"]] == ["a", "b"]
    after = client.get("/readyz").json()
    assert after["documents"] == before["documents"] + 2 and after["status"] == "ready"


def test_json_and_multipart_posts_treat_an_existing_id_alike(client: TestClient) -> None:
    """JSON POST refused an existing id while a multipart upload silently replaced it."""
    assert client.post("/v1/documents", json={"id": "x", "text": "原文。"}).status_code == 201
    upload = {"file": ("x.txt", "新文。".encode(), "text/plain")}
    assert client.post("/v1/documents", files=upload).status_code == 409
    assert client.post("/v1/documents", json={"id": "x", "text": "新文。"}).status_code == 409
    assert client.get("/v1/documents/x").json()["text"] == "原文。"
    replaced = client.post("/v1/documents", params={"replace": "true"}, files=upload)
    assert replaced.status_code == 201 and replaced.json()["documents"][0]["created"] is False
    assert client.get("/v1/documents/x").json()["text"] == "新文。"
    again = client.post("/v1/documents", params={"replace": "true"}, json={"id": "x", "text": "第三版。"})
    assert again.status_code == 201 and client.get("/v1/documents/x").json()["text"] == "第三版。"


def test_one_behaviour_for_each_request_edge(client: TestClient) -> None:
    """The same mistake gets the same status, code and kind of message on every route (issue 14)."""
    for route in ("/v1/search", "/v1/ask"):
        wrong_type = client.post(route, content='{"query": "x"}', headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415, wrong_type.text
        assert wrong_type.json()["error"]["code"] == "unsupported_media_type"
    for route in ("/v1/search", "/v1/documents"):
        broken = client.post(route, content=b'{"query": ', headers={"content-type": "application/json"})
        assert broken.status_code == 400, broken.text
        assert broken.json()["error"]["code"] == "invalid_json"
        assert broken.json()["error"]["message"].startswith("the body is not valid JSON: ")
    empty = client.post("/v1/search", json={"query": ""})
    blank = client.post("/v1/search", json={"query": "   "})
    assert empty.status_code == blank.status_code == 422
    assert empty.json()["error"]["code"] == blank.json()["error"]["code"] == "invalid_request"


def test_untitled_document_is_titled_by_its_first_heading_or_line(client: TestClient) -> None:
    line = "這份通知很長，第一行就是一整句話，說明下週社區活動的時間地點安排與線上報名方式，請大家務必留意。"
    posted = client.post("/v1/documents", json={"text": line})
    title = posted.json()["documents"][0]["title"]
    assert title.startswith("這份通知很長") and title.endswith("…") and len(title) == 40
    note = ("會議紀錄.txt", "今天開會，討論了預算。".encode(), "text/plain")
    uploaded = client.post("/v1/documents", files=[("file", note)])
    assert uploaded.json()["documents"][0]["title"] == "會議紀錄"


def test_short_html_page_loses_its_navigation(client: TestClient) -> None:
    page = """<html><head><title>公告</title></head><body>
<div class="menu"><a href="/">首頁</a> | <a href="/about">關於我們</a> | <a href="/contact">聯絡我們</a></div>
<p>本週六停水，請住戶提前儲水。</p></body></html>"""
    response = client.post("/v1/documents", files=[("file", ("notice.html", page.encode(), "text/html"))])
    assert response.status_code == 201, response.text
    text = client.get("/v1/documents/notice").json()["text"]
    assert "停水" in text and "首頁" not in text and "聯絡我們" not in text

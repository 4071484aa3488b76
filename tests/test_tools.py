"""`/v1/tools`: function definitions generated from the request models, and valid against them."""

import jsonschema
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from index import Document, HashingEmbedder, build_index
from index.writing.live import LiveIndex
from service.app import create_app
from service.schemas import AskRequest, SearchRequest

#: TestClient's default Host, "testserver", is not a name a loopback server answers for.
LOCAL = "http://127.0.0.1"

MODELS = {"search": SearchRequest, "ask": AskRequest}
GOOD = {
    "search": [
        {"query": "互联网诊疗"},
        {"query": "舊區改造", "k": 3, "mode": "lexical"},
        {"query": "營商", "filters": {"doc_id": ["a"], "metadata": {"k": "v"}}},
    ],
    "ask": [{"question": "上半年地区生产总值是多少"}, {"question": "問題", "k": 2, "mode": "dense"}],
}
BAD = {
    "search": [
        {},
        {"query": ""},
        {"query": "x", "k": 0},
        {"query": "x", "k": 101},
        {"query": "x", "mode": "fuzzy"},
        {"query": "x", "extra": 1},
        {"query": "字" * 1001},
    ],
    "ask": [{}, {"question": ""}, {"question": "x", "k": 500}],
}


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict:
    index_dir = tmp_path_factory.mktemp("tools")
    build_index([Document("a", "文件。")], index_dir, HashingEmbedder())
    live = LiveIndex.open(index_dir, HashingEmbedder())
    with TestClient(create_app(index=live), base_url=LOCAL) as client:
        body = client.get("/v1/tools").json()
    live.close()
    return {tool["function"]["name"]: tool for tool in body["tools"]}


def test_tools_are_function_definitions(tools: dict) -> None:
    assert set(tools) == {"search", "ask"}
    for tool in tools.values():
        assert tool["type"] == "function"
        params = tool["function"]["parameters"]
        assert params["type"] == "object" and "$ref" not in str(params) and tool["function"]["description"]
        jsonschema.Draft202012Validator.check_schema(params)


@pytest.mark.parametrize("name", ["search", "ask"])
def test_schema_agrees_with_the_request_model(tools: dict, name: str) -> None:
    validator = jsonschema.Draft202012Validator(tools[name]["function"]["parameters"])
    for example in GOOD[name]:
        validator.validate(example)
        MODELS[name].model_validate(example)
    for example in BAD[name]:
        assert not validator.is_valid(example), example
        with pytest.raises(ValidationError):
            MODELS[name].model_validate(example)

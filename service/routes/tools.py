"""The web pages and their shared assets, ``tools`` (function-calling definitions) and ``/v1/convert``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from index import convert_script

from .. import schemas
from ..deps import Reading, require_caller
from ..errors import ApiError
from ..tools import tool_definitions

STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_CONVERT_CHARS = 20_000

#: Routes of the server as a whole (``/``, ``/v1/tools``, ``/v1/convert``).
router = APIRouter(tags=["tools"])
#: Routes of one collection (``/v1/collections/{collection}/tools``).
in_collection = APIRouter(tags=["tools"])


@router.get("/", include_in_schema=False)
def web_page() -> FileResponse:
    """The question page: one HTML file and the two shared assets under ``/assets/``, nothing from elsewhere."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/documents/{doc_id}", include_in_schema=False)
def document_page(doc_id: str) -> FileResponse:
    """A document to read, the passage a result cited marked in it (``?p=``; ``?c=`` collection, ``?q=`` query).

    The same file for every id: the page reads the document from the API with the caller's key.
    """
    return FileResponse(STATIC / "document.html", media_type="text/html; charset=utf-8")


@router.get("/assets/common.css", include_in_schema=False)
def common_css() -> FileResponse:
    """The styles both pages share (colours, fonts, dark mode, cards, errors); same origin, nothing external."""
    return FileResponse(STATIC / "common.css", media_type="text/css; charset=utf-8")


@router.get("/assets/common.js", include_in_schema=False)
def common_js() -> FileResponse:
    """The script both pages load before their own: the API call with the caller's key, errors in Chinese, helpers."""
    return FileResponse(STATIC / "common.js", media_type="text/javascript; charset=utf-8")


@router.get("/v1/tools", response_model=schemas.ToolsResponse)
def tools() -> schemas.ToolsResponse:
    """`search` and `ask` as JSON Schema function definitions for LLM tool calling."""
    return schemas.ToolsResponse(tools=tool_definitions())


@in_collection.get("/tools", response_model=schemas.ToolsResponse)
def collection_tools(target: Reading) -> schemas.ToolsResponse:
    """The same, for calling this collection's `search` and `ask` (a caller who may read it)."""
    return schemas.ToolsResponse(tools=tool_definitions())


@router.post("/v1/convert", response_model=schemas.ConvertResponse, dependencies=[require_caller])
def convert(body: schemas.ConvertRequest) -> schemas.ConvertResponse:
    """Texts in simplified or traditional script (OpenCC t2s / s2t), for showing passages either way."""
    if any(len(text) > MAX_CONVERT_CHARS for text in body.texts):
        raise ApiError(422, "invalid_request", f"texts: each text may have at most {MAX_CONVERT_CHARS} characters")
    return schemas.ConvertResponse(texts=convert_script(body.texts, body.to))

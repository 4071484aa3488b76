"""The web page, ``/v1/tools`` (function-calling definitions) and ``/v1/convert`` (script conversion)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from index import convert_script

from .. import schemas
from ..deps import require_read
from ..errors import ApiError
from ..tools import tool_definitions

STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_CONVERT_CHARS = 20_000

router = APIRouter(tags=["tools"])


@router.get("/", include_in_schema=False)
def web_page() -> FileResponse:
    """The question page: one self-contained HTML file, no external resources."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/v1/tools", response_model=schemas.ToolsResponse)
def tools() -> schemas.ToolsResponse:
    """`search` and `ask` as JSON Schema function definitions for LLM tool calling."""
    return schemas.ToolsResponse(tools=tool_definitions())


@router.post("/v1/convert", response_model=schemas.ConvertResponse, dependencies=[require_read])
def convert(body: schemas.ConvertRequest) -> schemas.ConvertResponse:
    """Texts in simplified or traditional script (OpenCC t2s / s2t), for showing passages either way."""
    if any(len(text) > MAX_CONVERT_CHARS for text in body.texts):
        raise ApiError(422, "invalid_request", f"texts: each text may have at most {MAX_CONVERT_CHARS} characters")
    return schemas.ConvertResponse(texts=convert_script(body.texts, body.to))

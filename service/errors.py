"""The one JSON error shape, ``{"error": {"code", "message"}}``, and how library errors map to it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from index import (
    ConflictError,
    DocumentError,
    IndexBusyError,
    IndexUnavailableError,
    InvalidInputError,
    ModelError,
    NotFoundError,
    TooLargeError,
    UnsupportedFormatError,
    ZhsearchError,
)

from .keys import KeysUnavailableError

STATUS = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (TooLargeError, 413),
    (UnsupportedFormatError, 415),
    (DocumentError, 400),
    (IndexBusyError, 503),
    (IndexUnavailableError, 503),
    (ModelError, 503),
    (KeysUnavailableError, 503),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape: every error response of the API, MCP's HTTP endpoint and the middleware."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message), headers=headers)


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """The error shape sent on a raw ASGI channel (middleware that answers before the app)."""
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def unauthorized() -> JSONResponse:
    return error_response(
        401, "unauthorized", "send `Authorization: Bearer <key>` with a valid key", {"WWW-Authenticate": "Bearer"}
    )


def validation_message(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # where the field came from is noise to a reader
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def invalid_json(errors: list[Any]) -> ApiError | None:
    """The 400 for a body that is not JSON at all, from FastAPI's or pydantic's parse error; None otherwise."""
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = str((err.get("ctx") or {}).get("error") or err.get("msg", "")).removeprefix("Invalid JSON: ")
            loc = [p for p in err.get("loc", ()) if isinstance(p, int)]
            where = f" at character {loc[0]}" if loc else ""
            return ApiError(400, "invalid_json", f"the body is not valid JSON: {detail}{where}")
    return None


def is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def install(app: FastAPI) -> None:
    """Every error a client can cause becomes the one JSON shape with a specific status."""

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        whole_body = any(tuple(err.get("loc", ())) == ("body",) for err in errors)
        content_type = request.headers.get("content-type", "")
        if whole_body and content_type and not is_json(content_type):
            # FastAPI reads a body of another type as bytes and reports "a valid dictionary"
            return error_response(415, "unsupported_media_type", f"send application/json, not {content_type}")
        bad_json = invalid_json(errors)
        if bad_json is not None:
            return error_response(bad_json.status, bad_json.code, bad_json.message)
        return error_response(422, "invalid_request", validation_message(errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        limit = request.scope.get("state", {}).get("too_large")
        if limit is not None:  # the body grew past the limit while the framework read it (chunked)
            return error_response(413, "too_large", f"the request body is larger than {limit} bytes")
        if exc.status_code == 400 and str(exc.detail) == "There was an error parsing the body":
            # FastAPI's answer to a body json.loads cannot take (nested past the recursion limit)
            return error_response(400, "invalid_json", "the body is not valid JSON: nested too deeply to read")
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(ApiError)
    async def on_api(_: Request, exc: ApiError) -> JSONResponse:
        if exc.status == 401:
            return unauthorized()
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(ZhsearchError)
    async def on_library(_: Request, exc: ZhsearchError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        return error_response(status, exc.code, str(exc))

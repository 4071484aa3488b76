"""``documents`` and ``passages``: add, replace, delete and read documents, in the default collection
(``/v1/documents``) or a named one (``/v1/collections/{collection}/documents``).

A reader sees only the documents its groups may read (``index.access``): one it may not
read is answered exactly as one that does not exist.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from index import (
    Document,
    Filters,
    InvalidInputError,
    NotFoundError,
    ServedIndex,
    Settings,
    check_access,
    new_document_id,
    parse_isolated,
)

from .. import presenter, schemas
from ..deps import AppSettings, Reading, Writing
from ..errors import ApiError, invalid_json, is_json, validation_message

router = APIRouter(tags=["documents"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": schemas.DocumentIn.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "access": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Groups that may read every uploaded document (absent: everyone).",
                        },
                    },
                    "required": ["file"],
                }
            },
        },
    }
}


def _kept_access(index: ServedIndex, docs: list[Document]) -> list[Document]:
    """``docs`` with the groups of the documents they replace: a write that says nothing of ``access``
    never opens a restricted document to every reader (fails closed). One lookup of the documents'
    metadata, held in memory; their text is not read."""
    _, held = index.documents(0, len(docs), Filters(doc_ids=frozenset(doc.id for doc in docs)))
    groups = {info.id: info.metadata["access"] for info in held if "access" in info.metadata}
    return [
        replace(doc, metadata={**doc.metadata, "access": groups[doc.id]}) if doc.id in groups else doc for doc in docs
    ]


def _check_size(settings: Settings, text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > settings.max_document_bytes:
        raise ApiError(413, "too_large", f"the document has {size} bytes; the limit is {settings.max_document_bytes}")


async def _uploaded(request: Request, settings: Settings) -> list[Document]:
    try:
        form = await request.form()
    except (ValueError, KeyError, AssertionError) as exc:
        raise ApiError(400, "bad_request", f"cannot read the multipart body: {exc}") from exc
    try:
        uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not uploads:
            raise ApiError(422, "invalid_request", "file: attach at least one file")
        access_fields = [value for key, value in form.multi_items() if key == "access"]
        if any(not isinstance(value, str) for value in access_fields):
            raise ApiError(422, "invalid_request", "access: group names as form fields, not files")
        access = check_access([str(v) for v in access_fields], "access") if access_fields else None
        docs: list[Document] = []
        for upload in uploads:
            name = Path(upload.filename or "upload.txt").name
            raw = await upload.read()
            # Parsed in a child process within the time and memory budgets, waited for off the event loop.
            found = await run_in_threadpool(parse_isolated, name, raw, None, settings.budgets)
            for doc in found:
                _check_size(settings, doc.text)
                if access is not None:
                    if "access" in doc.metadata:
                        raise InvalidInputError(f"{name}: its documents carry access already; leave out the field")
                    doc.metadata["access"] = access
            docs.extend(found)
        return docs
    finally:
        await form.close()


@router.post("/documents", status_code=201, response_model=schemas.UploadResponse, openapi_extra=_UPLOAD_BODY)
async def add_documents(
    request: Request,
    target: Writing,
    settings: AppSettings,
    replace_: Annotated[
        bool,
        Query(
            alias="replace",
            description="Replace documents whose id exists (default: 409); one given no access keeps its groups.",
        ),
    ] = False,
) -> schemas.UploadResponse:
    """Add documents: a JSON document, or a multipart upload of files (.txt, .md, .html, .htm, .pdf,
    .docx, .jsonl, .json: ``SUFFIXES`` of ``index.text.ingest``); ``access`` form fields give the groups
    that may read every uploaded document.

    All or nothing: every document is checked before any is written, and the batch is
    one change (one transaction on one node). An id that exists is a 409 unless ``replace=true``.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if is_json(ctype):
        try:
            body = schemas.DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            errors = list(exc.errors())
            raise invalid_json(errors) or ApiError(422, "invalid_request", validation_message(errors)) from exc
        _check_size(settings, body.text)
        docs = [Document(body.id or new_document_id(), body.text, body.title, body.stored_metadata(), "api")]
        if replace_ and body.keeps_access:
            docs = await run_in_threadpool(_kept_access, target.index, docs)
    elif ctype == "multipart/form-data":
        docs = await _uploaded(request, settings)
        if replace_:
            keeping = [doc for doc in docs if "access" not in doc.metadata]
            kept = {d.id: d for d in await run_in_threadpool(_kept_access, target.index, keeping)}
            docs = [kept.get(doc.id, doc) for doc in docs]
    else:
        raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data")
    results = await run_in_threadpool(target.index.put_many, docs, replace=replace_)
    return schemas.UploadResponse(documents=[presenter.written(r) for r in results])


@router.get("/documents", response_model=schemas.DocumentList)
def list_documents(
    target: Reading,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> schemas.DocumentList:
    """The documents the caller may read, by id; ``total`` counts those only."""
    total, page = target.index.documents(offset, limit, target.filters())
    return schemas.DocumentList(total=total, offset=offset, limit=limit, documents=[presenter.summary(d) for d in page])


@router.get("/documents/{doc_id}", response_model=schemas.DocumentOut)
def get_document(doc_id: str, target: Reading) -> schemas.DocumentOut:
    doc, passages = target.index.document_with_passages(doc_id)
    if not target.readable(doc.metadata):
        raise NotFoundError(f"no document with id {doc_id!r}")
    return schemas.DocumentOut(
        id=doc.id,
        title=doc.title,
        text=doc.text,
        metadata=doc.metadata,
        passages=[presenter.passage(p, doc.metadata) for p in passages],
    )


@router.put("/documents/{doc_id}", response_model=schemas.DocumentWritten)
def put_document(
    doc_id: str, body: schemas.DocumentUpdate, target: Writing, settings: AppSettings, response: Response
) -> schemas.DocumentWritten:
    """Replace a document (or create it under this id); a new ``access`` applies to the next request."""
    _check_size(settings, body.text)
    doc = Document(doc_id, body.text, body.title, body.stored_metadata(), "api")
    if body.keeps_access:
        doc = _kept_access(target.index, [doc])[0]
    result = target.index.put(doc)
    response.status_code = 201 if result.created else 200
    return presenter.written(result)


@router.delete("/documents/{doc_id}", status_code=204)
def delete_document(doc_id: str, target: Writing) -> Response:
    target.index.delete(doc_id)
    return Response(status_code=204)


@router.get("/passages/{passage_id}", response_model=schemas.PassageOut)
def get_passage(passage_id: int, target: Reading) -> schemas.PassageOut:
    found, metadata = target.index.passage_with_metadata(passage_id)
    if not target.readable(metadata):
        raise NotFoundError(f"no passage with id {passage_id}")
    return presenter.passage(found, metadata)

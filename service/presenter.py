"""Library results as the wire shapes of ``service.schemas``, shared by HTTP and MCP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from index import (
    Answer,
    AskResult,
    DocumentInfo,
    Filters,
    Hit,
    SearchResult,
    StoredPassage,
    WriteResult,
    highlights,
    pages_of,
)

from . import schemas


def filters(model: schemas.SearchFilters | None) -> Filters | None:
    if model is None:
        return None
    return Filters(frozenset(model.doc_id) if model.doc_id is not None else None, dict(model.metadata))


def hits(norm_query: str, found: list[Hit]) -> list[schemas.SearchHit]:
    """Hits with the spans of their text that match the query (as it was matched: normalized)."""
    return [schemas.SearchHit(**hit.as_dict(), highlights=highlights(norm_query, hit.text)) for hit in found]


def search_response(result: SearchResult) -> schemas.SearchResponse:
    return schemas.SearchResponse(
        query=result.query,
        mode=result.mode,
        results=hits(result.norm_query, result.hits),
        took_ms=result.took_ms,
        shards=schemas.ShardsAnswered(**result.shards) if result.shards else None,
    )


def marked(answer: Answer) -> str:
    """The answer's sentence with the answer in Markdown bold (what a chat client shows as is)."""
    sentence = answer.sentence or answer.text
    at = answer.start - answer.sentence_start if answer.sentence else 0
    if sentence[at : at + len(answer.text)] != answer.text:
        at = sentence.find(answer.text)
    if at < 0 or not answer.text:
        return sentence
    return f"{sentence[:at]}**{answer.text}**{sentence[at + len(answer.text) :]}"


def ask_response(result: AskResult) -> schemas.AskResponse:
    answer = result.answer
    return schemas.AskResponse(
        question=result.question,
        mode=result.mode,
        answer=schemas.AnswerModel(**answer.__dict__, sentence_marked=marked(answer)) if answer else None,
        passages=hits(result.norm_query, result.hits),
        took_ms=result.took_ms,
        shards=schemas.ShardsAnswered(**result.shards) if result.shards else None,
    )


def summary(info: DocumentInfo) -> schemas.DocumentSummary:
    return schemas.DocumentSummary(
        id=info.id, title=info.title, metadata=info.metadata, chars=info.chars, passages=len(info.passage_ids)
    )


def written(result: WriteResult) -> schemas.DocumentWritten:
    return schemas.DocumentWritten(**summary(result.document).model_dump(), created=result.created)


def passage(p: StoredPassage, metadata: Mapping[str, Any] | None = None) -> schemas.PassageOut:
    """A stored passage; ``metadata`` (its document's) gives the PDF pages it lies on."""
    return schemas.PassageOut(
        pages=pages_of(metadata, p.start, p.end) if metadata else None,
        passage_id=p.id,
        doc_id=p.doc_id,
        title=p.title,
        section=p.section,
        section_path=list(p.section_path),
        text=p.text,
        start=p.start,
        end=p.end,
    )


def json_response(model: BaseModel) -> Response:
    """A model already validated on construction, serialized once.

    Returning the model itself makes FastAPI validate and encode it again through
    ``response_model``; for a search response that was about a tenth of the
    request's time beside the query encoding. Routes keep ``response_model`` for
    their OpenAPI schema.
    """
    return Response(content=model.model_dump_json(), media_type="application/json")

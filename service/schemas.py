"""Request and response models of the HTTP API (also the source of `/v1/tools`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from index import MAX_K, MAX_QUERY_CHARS, InvalidInputError, Mode


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: list[str] | None = Field(None, max_length=1000, description="Only these documents.")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Only documents whose metadata has these exact values."
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        ..., min_length=1, max_length=MAX_QUERY_CHARS, description="Question or keywords, any Chinese script."
    )
    k: int = Field(10, ge=1, le=MAX_K, description="How many passages to return.")
    mode: Mode = Field("hybrid", description="Retrieval mode.")
    filters: SearchFilters | None = Field(None, description="Restrict the search to some documents.")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        ..., min_length=1, max_length=MAX_QUERY_CHARS, description="A question in any Chinese script."
    )
    k: int = Field(5, ge=1, le=MAX_K, description="How many evidence passages to return.")
    mode: Mode = Field("hybrid", description="Retrieval mode.")
    filters: SearchFilters | None = Field(None, description="Restrict the search to some documents.")


class SearchHit(BaseModel):
    rank: int
    score: float = Field(
        description="Probability that this passage's document is relevant to the query, calibrated on public dev sets "
        "(README, Scores): the same scale in every mode and from query to query."
    )
    passage_id: int
    doc_id: str
    title: str
    section: str
    text: str = Field(description="The passage in its original script.")
    start: int = Field(description="Offset of the passage in the original document text.")
    end: int
    pages: list[int] | None = Field(None, description="The PDF pages (1-based) the passage lies on; null otherwise.")
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) spans of `text` that match the query."
    )


class ShardsAnswered(BaseModel):
    answered: int
    total: int


class SearchResponse(BaseModel):
    query: str
    mode: str = Field(description="The retrieval mode that ran.")
    results: list[SearchHit]
    took_ms: float
    shards: ShardsAnswered | None = Field(
        None, description="Served by a cluster: how many shards answered.", exclude_if=lambda value: value is None
    )


class AnswerModel(BaseModel):
    text: str = Field(
        description="The answer: the shortest span of the evidence that answers (a number with its unit, a date, "
        "a name, a phrase), in the document's original script. With ZHSEARCH_ANSWERS=sentence, the whole sentence."
    )
    passage_id: int
    doc_id: str
    start: int = Field(description="Offset of the answer in the original document text.")
    end: int
    score: float = Field(
        ge=0,
        le=1,
        description="Probability that the answer is right, calibrated on public dev sets (README, Answers); "
        "ask says nothing below the threshold.",
    )
    pages: list[int] | None = Field(None, description="The PDF pages (1-based) the answer lies on; null otherwise.")
    sentence: str = Field("", description="The sentence the answer stands in: its context, original script.")
    sentence_start: int = Field(0, description="Offset of that sentence in the original document text.")
    sentence_end: int = 0
    sentence_marked: str = Field("", description="The sentence with the answer in Markdown bold, for chat clients.")


class AskResponse(BaseModel):
    question: str
    mode: str
    answer: AnswerModel | None = Field(description="null when nothing in the index answers confidently.")
    passages: list[SearchHit]
    took_ms: float
    shards: ShardsAnswered | None = Field(
        None, description="Served by a cluster: how many shards answered.", exclude_if=lambda value: value is None
    )


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=1000)
    text: str = Field(..., min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    access: list[str] | None = Field(
        None,
        max_length=100,
        description="Groups that may read the document (stored as metadata.access); []: only its writers; null: "
        "everyone who may read the collection. Absent: a new document is readable by everyone who may read the "
        "collection, a replaced one keeps the groups it had.",
    )

    def stored_metadata(self) -> dict[str, Any]:
        """The metadata as stored: ``access`` in it, when given (``access: null`` gives none)."""
        if self.access is None:
            return dict(self.metadata)
        if "access" in self.metadata:
            raise InvalidInputError("give access once: as the field access or as metadata.access, not both")
        return {**self.metadata, "access": self.access}

    @property
    def keeps_access(self) -> bool:
        """Whether a replaced document keeps the groups it had: neither ``access`` nor ``metadata.access`` given."""
        return "access" not in self.model_fields_set and "access" not in self.metadata


class DocumentIn(DocumentUpdate):
    id: str | None = Field(None, min_length=1, max_length=200, description="Chosen id; generated if absent.")


class DocumentSummary(BaseModel):
    id: str
    title: str
    metadata: dict[str, Any]
    chars: int
    passages: int


class DocumentWritten(DocumentSummary):
    created: bool


class UploadResponse(BaseModel):
    documents: list[DocumentWritten]


class DocumentList(BaseModel):
    total: int
    offset: int
    limit: int
    documents: list[DocumentSummary]


class PassageOut(BaseModel):
    passage_id: int
    doc_id: str
    title: str
    section: str
    section_path: list[str]
    text: str
    start: int
    end: int
    pages: list[int] | None = Field(None, description="The PDF pages (1-based) the passage lies on; null otherwise.")


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    passages: list[PassageOut]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ConvertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(..., max_length=500, description="Texts to convert (each up to 20,000 characters).")
    to: Literal["simplified", "traditional"] = Field(description="Target script.")


class ConvertResponse(BaseModel):
    texts: list[str]


class ToolFunction(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class ToolDefinition(BaseModel):
    type: Literal["function"] = "function"
    function: ToolFunction


class ToolsResponse(BaseModel):
    tools: list[ToolDefinition]


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="a-z, 0-9, _ and -: a folder name and a URL path segment.",
    )
    description: str = Field("", max_length=500, description="What the collection holds, for people.")


class CollectionOut(BaseModel):
    name: str
    description: str
    created: str = Field(description="When it was created (ISO 8601, UTC); empty for the default collection.")
    right: Literal["read", "write"] = Field(description="What the caller may do in it.")
    documents: int | None = Field(
        None, description="Documents the caller may read (null: not counted for this caller)."
    )


class CollectionList(BaseModel):
    collections: list[CollectionOut]

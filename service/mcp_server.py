"""The MCP server: `search` and `ask` as tools, the indexed documents as resources.

One ``MCPServer`` serves both transports. It gets its collections (``index.Collections``,
or anything with its ``using`` and ``infos``) through a callable, so the stdio process
(``zhsearch mcp``) can open them read-only on first use, while the HTTP app hands over
those its lifespan opened. Both tools take an optional ``collection`` (the default
collection when absent); ``zhsearch://collections`` lists the collections the caller
may read, and each one's documents are resources under it.

Over HTTP the caller is the request's key (``service.keys``), resolved by the endpoint
and read by every tool call and resource read: a key sees only what it may read
through the API, and a collection it may not read does not exist for it. Over stdio the
caller is whoever runs the process, who can read the index folders anyway.

The tools' parameters are the API's request models' fields (``service.tools``). The tools return the same JSON shapes as
``/v1/search`` and ``/v1/ask``, as structured content a client can cite.

Over HTTP the server is an ASGI app for ``/mcp`` (streamable HTTP) behind the
API's key rules: where keys are configured, a request needs
``Authorization: Bearer <key>`` with a key that may read, else 401.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, Protocol

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources import ResourceSecurity
from mcp.types import ToolAnnotations
from pydantic import BaseModel, WithJsonSchema

from index import (
    DEFAULT_COLLECTION,
    CollectionInfo,
    Filters,
    NotFoundError,
    ServedIndex,
    ZhsearchError,
    __version__,
    readable,
)
from index import ask as ask_question

from . import presenter, schemas
from .deps import CALLER_STATE
from .keys import EVERYONE, Caller
from .tools import DESCRIPTIONS, MODELS, parameters_schema

DOCUMENTS_URI = "zhsearch://documents"
DOCUMENT_URI = "zhsearch://documents/{doc_id}"
COLLECTIONS_URI = "zhsearch://collections"
COLLECTION_DOCUMENTS_URI = "zhsearch://collections/{collection}/documents"
COLLECTION_DOCUMENT_URI = "zhsearch://collections/{collection}/documents/{doc_id}"
COLLECTION_ARGUMENT = {
    "anyOf": [{"type": "string", "maxLength": 64}, {"type": "null"}],
    "default": None,
    "description": "The collection to search (zhsearch://collections lists them); the default collection if absent.",
}
INSTRUCTIONS = (
    "Search Chinese documents (traditional or simplified script). `search` returns ranked passages in their "
    "original script with doc_id and [start, end) offsets into the document; `ask` adds the extractive answer "
    "(a short span, with its sentence and a calibrated probability) or null when the documents do not say. "
    f"Cite passages by doc_id and offsets; read a whole document at {DOCUMENT_URI}."
)
#: The caller of the tool call or resource read being served (set by ``_StrictServer``).
_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("zhsearch_mcp_caller", default=None)


def _current_caller(error: type[Exception] = ToolError) -> Caller:
    found = _caller.get()
    if found is None:  # only a call through ``_StrictServer`` sets one
        raise error("no caller for this request")
    return found


class Library(Protocol):
    """What the MCP server reads: collections by name (``index.Collections``)."""

    def using(self, name: str) -> AbstractContextManager[ServedIndex]: ...

    def infos(self) -> list[CollectionInfo]: ...


class Single:
    """One index as the default collection, the only one."""

    def __init__(self, index: ServedIndex) -> None:
        self.index = index

    @contextmanager
    def using(self, name: str) -> Iterator[ServedIndex]:
        if name != DEFAULT_COLLECTION:
            raise NotFoundError(f"no collection named {name[:80]!r}")
        yield self.index

    def infos(self) -> list[CollectionInfo]:
        return [CollectionInfo(name=DEFAULT_COLLECTION, description="", created="", path=self.index.path)]


def _caller_of(context: Any, local: bool) -> Caller:
    """The caller the HTTP endpoint resolved for this message's request; over stdio (``local``), the
    local user. A server for HTTP never falls back to the local user."""
    try:
        request = context.request_context.request
    except (AttributeError, ValueError, LookupError):
        request = None
    if request is None:
        if local:
            return EVERYONE
        raise ToolError("no caller for this request")
    found = request.scope.get("state", {}).get(CALLER_STATE)
    if not isinstance(found, Caller):  # the endpoint refuses requests without one: never reached
        raise ToolError("no caller for this request")
    return found


_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _signature(request: type[BaseModel], response: type[BaseModel]) -> inspect.Signature:
    """A tool's parameters: the request model's fields and ``collection``, each with the JSON Schema
    ``/v1/tools`` shows (``collection`` is MCP's own: the API names it in the path).

    The schema's limits (lengths, k's range) are shown to the client, not enforced by the SDK: the
    index checks them with its own (maybe lower) limits (``validate_query``), whose messages say
    what to change.
    """
    shown = parameters_schema(request)["properties"]
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.default,
            annotation=Annotated[field.annotation, WithJsonSchema(shown[name])],
        )
        for name, field in request.model_fields.items()
    ]
    parameters.append(
        inspect.Parameter(
            "collection",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, WithJsonSchema(COLLECTION_ARGUMENT)],
        )
    )
    return inspect.Signature(parameters, return_annotation=response)


class _StrictServer(MCPServer):
    """Tool calls take exactly the declared arguments: an unknown one is a tool error, as the HTTP API's
    422 for an unknown field (the SDK would drop it silently). Each call and read runs as its caller
    (``_caller_of``); ``local``: a stdio server, whose caller is the local user."""

    local = True

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
            if unknown:
                allowed = ", ".join(tool.parameters.get("properties", {}))
                raise ToolError(f"{name}: unknown argument(s) {', '.join(unknown)}; it takes {allowed}")
        token = _caller.set(_caller_of(context, self.local))
        try:
            return await super().call_tool(name, arguments, context)
        finally:
            _caller.reset(token)

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            caller = _caller_of(context, self.local)
        except ToolError as exc:
            raise ResourceError(str(exc)) from exc
        token = _caller.set(caller)
        try:
            return await super().read_resource(uri, context)
        finally:
            _caller.reset(token)


def _new_server(local: bool) -> MCPServer:
    """An ``MCPServer``, without its constructor's ``logging.basicConfig`` on the root logger.

    The SDK configures root logging when none is set up; logging is the host's
    business (uvicorn's config for ``serve``, ``zhsearch mcp`` for stdio).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        server = _StrictServer(
            name="zhsearch",
            title="zhsearch: Chinese semantic search",
            instructions=INSTRUCTIONS,
            version=__version__,
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    server.local = local
    return server


def create_mcp(get_library: Callable[[], Library], *, local: bool = True) -> MCPServer:
    """The MCP server over the collections ``get_library`` returns at call time (``Single``: one index as
    the default collection alone). ``local``: over stdio, for the local user; else (HTTP) every call needs the caller
    its request's key made.

    The tools take exactly the arguments that ``/v1/tools`` advertises (the API's
    request models) and ``collection``, and check them with the searcher's limits.
    """
    server = _new_server(local)

    @contextmanager
    def reading(collection: str | None, error: type[Exception] = ToolError) -> Iterator[tuple[ServedIndex, Any]]:
        """The collection's index and the caller's groups in it; a collection the caller may not read is
        one that does not exist."""
        name = collection or DEFAULT_COLLECTION
        caller = _current_caller(error)
        try:
            if not caller.may_read(name):
                raise NotFoundError(f"no collection named {name[:80]!r}")
            with get_library().using(name) as index:
                yield index, caller.groups_in(name)
        except NotFoundError as exc:
            raise (ResourceNotFoundError(str(exc)) if error is ResourceError else error(str(exc))) from exc
        except ZhsearchError as exc:
            raise error(str(exc)) from exc

    def within(filters: Any, groups: frozenset[str] | None) -> Filters | None:
        found = (presenter.filters(filters) or Filters()).within(groups)
        return None if found.empty else found

    def search(**arguments: Any) -> schemas.SearchResponse:
        query, k, mode, filters = (arguments[name] for name in ("query", "k", "mode", "filters"))
        with reading(arguments.get("collection")) as (index, groups):
            try:
                result = index.search(query, k, mode, within(filters, groups))
            except ZhsearchError as exc:
                raise ToolError(str(exc)) from exc
        return presenter.search_response(result)

    def ask(**arguments: Any) -> schemas.AskResponse:
        question, k, mode, filters = (arguments[name] for name in ("question", "k", "mode", "filters"))
        with reading(arguments.get("collection")) as (index, groups):
            try:
                result = ask_question(index, question, k, mode, within(filters, groups))
            except ZhsearchError as exc:
                raise ToolError(str(exc)) from exc
        return presenter.ask_response(result)

    tools: list[tuple[Callable[..., BaseModel], type[BaseModel]]] = [
        (search, schemas.SearchResponse),
        (ask, schemas.AskResponse),
    ]
    for tool, response in tools:
        setattr(tool, "__signature__", _signature(MODELS[tool.__name__], response))  # noqa: B010
        server.tool(name=tool.__name__, description=DESCRIPTIONS[tool.__name__], annotations=_READ_ONLY)(tool)

    def listing(collection: str) -> str:
        with reading(collection, ResourceError) as (index, groups):
            _, docs = index.documents(0, sys.maxsize, None if groups is None else Filters(groups=groups))
        listed = [presenter.summary(info).model_dump() for info in docs]
        return json.dumps({"total": len(listed), "documents": listed}, ensure_ascii=False)

    def text(collection: str, doc_id: str) -> str:
        with reading(collection, ResourceError) as (index, groups):
            try:
                found = index.document(doc_id)
            except NotFoundError as exc:
                raise ResourceNotFoundError(str(exc)) from exc
            except ZhsearchError as exc:
                raise ResourceError(str(exc)) from exc
        if not readable(found.metadata, groups):
            raise ResourceNotFoundError(f"no document with id {doc_id!r}")
        return found.text

    @server.resource(
        COLLECTIONS_URI,
        name="collections",
        title="Collections",
        description="The collections this caller may read: name, description, and the URI of its documents.",
        mime_type="application/json",
    )
    def collections() -> str:
        caller = _current_caller(ResourceError)
        try:
            infos = [info for info in get_library().infos() if caller.may_read(info.name)]
        except ZhsearchError as exc:
            raise ResourceError(str(exc)) from exc
        listed = [
            {
                "name": info.name,
                "description": info.description,
                "documents": COLLECTION_DOCUMENTS_URI.format(collection=info.name),
            }
            for info in infos
        ]
        return json.dumps({"collections": listed}, ensure_ascii=False)

    @server.resource(
        DOCUMENTS_URI,
        name="documents",
        title="Indexed documents",
        description="Every document of the default collection this caller may read: id, title, metadata, "
        "length in characters, number of passages.",
        mime_type="application/json",
    )
    def documents() -> str:
        return listing(DEFAULT_COLLECTION)

    # Ids are looked up in SQLite, never used as paths: only NUL bytes are refused.
    unchecked = ResourceSecurity(reject_path_traversal=False, reject_absolute_paths=False)

    @server.resource(
        DOCUMENT_URI,
        name="document",
        title="Document text",
        description="The original full text of one document of the default collection; passage offsets index into it.",
        mime_type="text/plain",
        security=unchecked,
    )
    def document(doc_id: str) -> str:
        return text(DEFAULT_COLLECTION, doc_id)

    @server.resource(
        COLLECTION_DOCUMENTS_URI,
        name="collection-documents",
        title="A collection's documents",
        description="Every document of one collection this caller may read.",
        mime_type="application/json",
    )
    def collection_documents(collection: str) -> str:
        return listing(collection)

    @server.resource(
        COLLECTION_DOCUMENT_URI,
        name="collection-document",
        title="Document text, in a collection",
        description="The original full text of one document of a collection.",
        mime_type="text/plain",
        security=unchecked,
    )
    def collection_document(collection: str, doc_id: str) -> str:
        return text(collection, doc_id)

    return server


def run_stdio(server: MCPServer) -> None:
    """Serve MCP over stdin/stdout until the client closes stdin.

    While it runs the SDK points fd 1 at stderr, so stray prints never corrupt the protocol.
    """
    server.run("stdio")


__all__ = ["COLLECTIONS_URI", "DOCUMENTS_URI", "DOCUMENT_URI", "Single", "create_mcp", "run_stdio"]

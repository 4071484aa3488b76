"""``/v1/collections``: create, list, show and delete collections (``index.collections``).

A caller sees the collections it may read, nothing of the others: one it may not read
answers 404 as one that does not exist. Creating and deleting need an admin key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from index import CollectionInfo, Collections, Filters, ZhsearchError

from .. import schemas
from ..deps import AnyCaller, check_read, collections_of, hidden
from ..errors import ApiError
from ..keys import Caller

router = APIRouter(tags=["collections"])


def _shown(collections: Collections, info: CollectionInfo, caller: Caller) -> schemas.CollectionOut:
    try:
        with collections.using(info.name) as index:
            groups = caller.groups_in(info.name)
            documents: int | None = index.documents(0, 0, None if groups is None else Filters(groups=groups))[0]
    except ZhsearchError:  # a collection that cannot count now (a shard down) is still listed
        documents = None
    return schemas.CollectionOut(
        name=info.name,
        description=info.description,
        created=info.created,
        right="write" if caller.may_write(info.name) else "read",
        documents=documents,
    )


def _admin(caller: Caller) -> None:
    if caller.anonymous:
        raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>` with an admin key")
    if not caller.admin:
        raise ApiError(403, "forbidden", "creating and deleting collections needs an admin key")


@router.get("/v1/collections", response_model=schemas.CollectionList)
def list_collections(request: Request, caller: AnyCaller) -> schemas.CollectionList:
    """The collections the caller may read (the default one first)."""
    collections = collections_of(request)
    infos = [info for info in collections.infos() if caller.may_read(info.name)]
    infos.sort(key=lambda info: (info.name != "default", info.name))
    return schemas.CollectionList(collections=[_shown(collections, info, caller) for info in infos])


@router.post("/v1/collections", status_code=201, response_model=schemas.CollectionOut)
async def create_collection(request: Request, body: schemas.CollectionIn, caller: AnyCaller) -> schemas.CollectionOut:
    """An empty collection, to fill through ``/v1/collections/{name}/documents`` (an admin key)."""
    _admin(caller)
    refused = request.app.state.settings.write_policy
    if refused:
        raise ApiError(403, "forbidden", refused)
    collections = collections_of(request)
    info = await run_in_threadpool(collections.create, body.name, body.description)
    return _shown(collections, info, caller)


@router.get("/v1/collections/{collection}", response_model=schemas.CollectionOut)
def get_collection(collection: str, request: Request, caller: AnyCaller) -> schemas.CollectionOut:
    check_read(caller, collection)
    collections = collections_of(request)
    return _shown(collections, collections.info(collection), caller)


@router.delete("/v1/collections/{collection}", status_code=204)
async def delete_collection(collection: str, request: Request, caller: AnyCaller) -> Response:
    """Remove a collection, its documents and its folder (an admin key; not the default collection)."""
    if not caller.may_read(collection) and not caller.admin:
        raise hidden(collection)
    _admin(caller)
    refused = request.app.state.settings.write_policy
    if refused:
        raise ApiError(403, "forbidden", refused)
    await run_in_threadpool(collections_of(request).delete, collection)
    return Response(status_code=204)

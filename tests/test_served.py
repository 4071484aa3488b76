"""The served index (issue 25): one opener for one node and a cluster, settings that survive reloads,
cluster writes that are all or nothing, and the defects found by reading, each reproduced here first."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from index import (
    ConflictError,
    Document,
    HashingEmbedder,
    IndexBusyError,
    IndexMismatchError,
    IndexUnavailableError,
    LiveIndex,
    ModelSpec,
    NotFoundError,
    ReadOnlyIndexError,
    Searcher,
    ServedIndex,
    Settings,
    Tuning,
    build_in_process,
    build_index,
    open_configured,
    open_index,
)
from index.cluster.layout import shard_dir, shard_of
from index.cluster.local import LocalShards, open_in_process
from index.cluster.ray_build import LazyEmbedder
from index.cluster.router import ClusterIndex
from index.cluster.shard import ShardReplica
from index.cluster.write import ModelInfo
from index.retrieval.snapshot import ADMITTED_KEPT, Filters
from index.storage.record import folder
from index.storage.record.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 3
TOPICS = ["黄浦江的潮汐与航运", "外滩的历史建筑", "豫园的园林", "南京路的商业", "老城厢的改造", "苏州河的治理"]


def _docs(n: int = 12, prefix: str = "d") -> list[Document]:
    return [
        Document(f"{prefix}-{i:02d}", f"第{i}号文件讲述{TOPICS[i % len(TOPICS)]}，以及相关的规划。" * 4, "", {"n": i})
        for i in range(n)
    ]


@pytest.fixture
def single(tmp_path: Path) -> Path:
    build_index(_docs(), tmp_path / "single", HashingEmbedder())
    return tmp_path / "single"


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Path:
    build_in_process(_docs(), tmp_path / "cluster", HashingEmbedder(), SHARDS)
    return tmp_path / "cluster"


def _replicas(cluster: ServedIndex) -> list[ShardReplica]:
    assert isinstance(cluster, ClusterIndex) and isinstance(cluster.shards, LocalShards)
    return cluster.shards.replicas


# -- one opener ------------------------------------------------------------------------


def test_one_opener_for_one_node_read_only_writable_and_a_cluster(single: Path, cluster_dir: Path) -> None:
    reader = open_index(single, HashingEmbedder())
    writer = open_index(single, HashingEmbedder(), writable=True)
    cluster = open_index(cluster_dir, HashingEmbedder())
    try:
        assert type(reader) is Searcher and type(writer) is LiveIndex and type(cluster) is ClusterIndex
        for index in (reader, writer, cluster):  # one set of signatures
            assert index.search("外滩的历史建筑", 3).hits
            assert index.documents(0, 100)[0] == 12
            assert index.document("d-01").id == "d-01"
            assert index.document_with_passages("d-01")[1]
            with pytest.raises(NotFoundError):
                index.document("missing")
            assert index.health()["consistent"] and index.build_seconds >= 0
        for read_only in (reader, cluster):
            with pytest.raises(ReadOnlyIndexError, match="read-only"):
                read_only.put(Document("x", "只读的索引不能写入。"))
    finally:
        for index in (reader, writer, cluster):
            index.close()


# -- defect 1: ZHSEARCH_EF_SEARCH everywhere, and after what resets it ---------------------


def test_ef_search_survives_checkpoints_and_reaches_every_shard(
    single: Path, cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHSEARCH_MODEL", "hashing")
    monkeypatch.setenv("ZHSEARCH_EF_SEARCH", "37")
    monkeypatch.setenv("ZHSEARCH_MERGE_VECTORS", "1")  # every write makes a vector checkpoint
    settings = Settings()
    live = open_configured(settings, index_dir=single, writable=True)
    try:
        assert isinstance(live, LiveIndex)
        live.put_many([Document(f"new-{n}", "新写入的文件讲述外滩的历史建筑。" * 3) for n in range(3)])
        assert live.checkpoints >= 1 and live.snapshot.vectors.ef_search == 37
    finally:
        live.close()
    reader = open_configured(settings, index_dir=single)  # what `zhsearch mcp` and the CLI open
    assert isinstance(reader, Searcher) and reader.snapshot.vectors.ef_search == 37
    reader.close()
    cluster = open_configured(settings, index_dir=cluster_dir, writable=True)
    other = ShardReplica(shard_dir(cluster_dir, 0), HashingEmbedder(), 0)  # a second replica of shard 0
    try:
        assert all(r.fresh().snapshot.vectors.ef_search == 37 for r in _replicas(cluster))
        doc_id = next(f"w-{n}" for n in range(100) if shard_of(f"w-{n}", SHARDS) == 0)
        other.put_many([Document(doc_id, "另一个副本写入的文件。" * 5)], True)  # the first replica reopens
        replica = _replicas(cluster)[0]
        assert replica.fresh().snapshot.vectors.ef_search == 37
        assert cluster.document(doc_id).id == doc_id
    finally:
        other.close()
        cluster.close()


# -- defect 2: the Ray paths and the configured model ------------------------------------------


def test_ray_model_spec_carries_the_configured_backend() -> None:
    assert ModelSpec.of(Settings(backend="onnx-int8")).backend == "onnx-int8"
    assert ModelSpec.of(Settings()).backend is None  # left at its default: a default, as in process
    assert ModelSpec.of(Settings(), model="hashing").model == "hashing"


def test_a_shard_replica_checks_the_configured_model_not_its_own_manifest(cluster_dir: Path, tmp_path: Path) -> None:
    spec = ModelSpec("hashing", str(tmp_path))
    same = LazyEmbedder(spec, spec.info())
    ShardReplica(shard_dir(cluster_dir, 1), same, 1).close()  # type: ignore[arg-type]
    other = LazyEmbedder(spec, ModelInfo("another-model", "f" * 16, 384))
    with pytest.raises(IndexMismatchError):
        ShardReplica(shard_dir(cluster_dir, 1), other, 1)  # type: ignore[arg-type]


def test_a_cluster_opened_with_another_model_is_refused(cluster_dir: Path) -> None:
    with pytest.raises(IndexMismatchError, match="configured"):
        open_index(cluster_dir, HashingEmbedder(dim=64))


def test_two_threads_loading_one_model_spec_share_one_model(tmp_path: Path) -> None:
    spec = ModelSpec("hashing", str(tmp_path), threads=3)
    loaded: list[object] = []
    workers = [threading.Thread(target=lambda: loaded.append(spec.load())) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(loaded) == 4 and all(model is loaded[0] for model in loaded)


# -- defect 3: a rebuild never drops what the API added ----------------------------------------


def test_a_rebuild_over_an_older_format_keeps_the_api_documents(single: Path) -> None:
    live = LiveIndex.open(single, HashingEmbedder())
    live.put(Document("api-doc", "通过接口写入的文件讲述苏州河的治理。" * 3))
    live.close()
    manifest_path = folder.require_current(single) / folder.MANIFEST
    manifest_path.write_text(manifest_path.read_text().replace('"format_version": 2', '"format_version": 1'))
    report = build_index(_docs(), single, HashingEmbedder())
    assert report.documents == 13
    rebuilt = Searcher.load(single, HashingEmbedder())
    assert rebuilt.document("api-doc").origin == "api"
    rebuilt.close()


def test_a_rebuild_that_cannot_read_the_api_documents_refuses(single: Path) -> None:
    live = LiveIndex.open(single, HashingEmbedder())
    live.put(Document("api-doc", "通过接口写入的文件讲述苏州河的治理。" * 3))
    live.close()
    conn = sqlite3.connect(folder.require_current(single) / folder.STORE)
    conn.execute("ALTER TABLE documents RENAME TO documents_v0")  # a store this version cannot read
    conn.commit()
    conn.close()
    before = folder.current(single)
    with pytest.raises(IndexMismatchError, match="added through the API"):
        build_index(_docs(), single, HashingEmbedder())
    assert folder.current(single) == before  # nothing published


def test_an_unreadable_previous_manifest_is_said(single: Path, caplog: pytest.LogCaptureFixture) -> None:
    (folder.require_current(single) / folder.MANIFEST).write_text("{}")
    with caplog.at_level(logging.WARNING, logger="zhsearch.build"):
        report = build_index(_docs(), single, HashingEmbedder())
    assert report.embedded_passages == report.passages
    assert "embedded again" in caplog.text


# -- defect 4: a cluster batch is all or nothing ----------------------------------------------------


class _RaceOn:
    """Shards whose ``put_many`` on ``shard`` first meets ``before()`` (another writer, a failure)."""

    def __init__(self, inner: LocalShards, shard: int, before: Any) -> None:
        self.inner, self.count, self.shard, self.before = inner, inner.count, shard, before

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        if any(method == "put_many" for method, _ in calls.values()) and self.shard in calls:
            self.before()
        return self.inner.call(calls)


def _ids_on(shard: int, n: int, prefix: str) -> list[str]:
    return [f"{prefix}-{i}" for i in range(1000) if shard_of(f"{prefix}-{i}", SHARDS) == shard][:n]


def test_a_conflict_on_one_shard_writes_nothing_on_the_others(cluster_dir: Path) -> None:
    cluster, shards = open_in_process(cluster_dir, HashingEmbedder())
    try:
        mine = _ids_on(0, 2, "batch") + _ids_on(1, 2, "batch")
        taken = mine[-1]  # on shard 1: created by another writer between the check and the write
        racer = shards.replicas[1]
        rival = Document(taken, "另一个写入者先写入了这个编号。" * 3)
        raced = ClusterIndex(cluster_dir, cluster.cluster, _RaceOn(shards, 1, lambda: racer.put_many([rival], True)),
                             HashingEmbedder())  # fmt: skip
        with pytest.raises(ConflictError):
            raced.put_many([Document(i, f"批量写入的文件{i}讲述豫园的园林。" * 3) for i in mine], replace=False)
        for doc_id in mine[:-1]:
            with pytest.raises(NotFoundError):
                cluster.document(doc_id)
        assert cluster.document(taken).text == rival.text  # the other writer's document stays
    finally:
        shards.close()


def test_a_failed_replace_puts_the_other_shards_back(cluster_dir: Path) -> None:
    cluster, shards = open_in_process(cluster_dir, HashingEmbedder())
    try:
        on_0 = next(d.id for d in _docs() if shard_of(d.id, SHARDS) == 0)
        on_2 = next(d.id for d in _docs() if shard_of(d.id, SHARDS) == 2)
        before = cluster.document(on_0)
        broken = shards.replicas[2]

        def fail(*args: Any, **kwargs: Any) -> None:
            raise IndexUnavailableError("the disk of shard 2 is full")

        original = broken.put_many
        broken.put_many = fail  # type: ignore[method-assign]
        try:
            with pytest.raises(IndexUnavailableError, match="disk"):
                cluster.put_many([Document(on_0, "替换后的文本。" * 5), Document(on_2, "替换后的文本。" * 5)])
        finally:
            broken.put_many = original  # type: ignore[method-assign]
        assert cluster.document(on_0) == before  # put back as it was: text, metadata, origin
        assert cluster.health()["consistent"]
    finally:
        shards.close()


# -- defect 5: listing a cluster's documents ------------------------------------------------------------


def test_cluster_listing_pages_like_one_node_and_sends_only_the_page(single: Path, cluster_dir: Path) -> None:
    one = Searcher.load(single, HashingEmbedder())
    cluster, shards = open_in_process(cluster_dir, HashingEmbedder())
    sent: list[tuple[str, int]] = []
    inner = shards.call

    def counted(calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        found = inner(calls)
        for shard, (method, _) in calls.items():
            if method == "document_infos":
                sent.append((method, len(found[shard])))
        return found

    shards.call = counted  # type: ignore[method-assign]
    try:
        for offset, limit in [(0, 5), (3, 4), (10, 5), (12, 3), (10_000_000, 20)]:
            total, page = cluster.documents(offset, limit)
            assert (total, [d.id for d in page]) == (12, [d.id for d in one.documents(offset, limit)[1]])
        assert sent and all(count <= 5 for _, count in sent)  # listing entries for the page only
    finally:
        shards.close()
        one.close()


# -- defect 6: a failed reopen -------------------------------------------------------------------------------------


def test_a_failed_shard_reopen_leaves_the_replica_serving_and_the_folder_held(
    cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = shard_dir(cluster_dir, 2)
    first = ShardReplica(target, HashingEmbedder(), 2)
    second = ShardReplica(target, HashingEmbedder(), 2)
    try:
        doc_id = _ids_on(2, 1, "reopen")[0]
        second.put_many([Document(doc_id, "另一个副本的写入。" * 5)], True)

        def broken(*args: Any, **kwargs: Any) -> LiveIndex:
            raise IndexUnavailableError("cannot open now")

        with monkeypatch.context() as patch:
            patch.setattr(LiveIndex, "open", broken)
            with pytest.raises(IndexUnavailableError):
                first.fresh()
        assert first.index.search("外滩", 3).hits is not None  # the old index still serves
        with pytest.raises(IndexBusyError):
            folder.lock(target, "zhsearch build")  # and the folder is still held
        assert first.fresh().document(doc_id).id == doc_id  # the next call reopens
    finally:
        first.close()
        second.close()


# -- defect 7: `zhsearch mcp` on a cluster ---------------------------------------------------------------------------


def test_zhsearch_mcp_serves_a_cluster_index(cluster_dir: Path, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.cli", "mcp", "--index-dir", str(cluster_dir)],
        env={"ZHSEARCH_MODEL": "hashing"},
        cwd=ROOT,
    )

    async def scenario() -> None:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("search", {"query": "外滩的历史建筑", "k": 3})
                assert not result.is_error, result.content
                assert result.structured_content and result.structured_content["results"]
                assert result.structured_content["shards"] == {"answered": SHARDS, "total": SHARDS}

    async def bounded() -> None:
        with anyio.fail_after(60):
            await scenario()

    anyio.run(bounded)


# -- defect 8: what request threads share -------------------------------------------------------------------------


def test_the_filter_cache_is_shared_safely_and_keeps_the_most_recent(single: Path) -> None:
    searcher = Searcher.load(single, HashingEmbedder())
    snap = searcher.snapshot
    errors: list[BaseException] = []

    def ask(seed: int) -> None:
        try:
            for n in range(400):
                snap.admitted(Filters(metadata={"n": (seed * 7 + n) % (ADMITTED_KEPT * 3)}))
        except BaseException as exc:  # collected and asserted on
            errors.append(exc)

    workers = [threading.Thread(target=ask, args=(seed,)) for seed in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors[:1]
    assert len(snap._admitted) <= ADMITTED_KEPT
    kept = Filters(metadata={"n": 1})
    first = snap.admitted(kept)
    for n in range(ADMITTED_KEPT * 2):  # others come and go; the one asked for each time stays
        snap.admitted(Filters(metadata={"n": 1000 + n}))
        assert snap.admitted(kept) is first
    searcher.close()


# -- defect 9: failures are said, not swallowed ------------------------------------------------------------------------


def test_a_store_that_cannot_be_read_is_a_503_not_a_500(single: Path) -> None:
    live = LiveIndex.open(single, HashingEmbedder())
    try:
        store_path = live.path / folder.STORE
        store_path.rename(store_path.with_suffix(".gone"))
        with pytest.raises(IndexUnavailableError):
            live.document("d-01")
    finally:
        live.close()


def test_a_lexical_rebuild_at_opening_is_said(single: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.rmtree(folder.require_current(single) / folder.LEXICAL)
    with caplog.at_level(logging.WARNING, logger="zhsearch.index"):
        live = LiveIndex.open(single, HashingEmbedder())
    try:
        assert "lexical index" in caplog.text and live.search("外滩的历史建筑", 3, "lexical").hits
    finally:
        live.close()


def test_tuning_is_what_the_settings_say() -> None:
    settings = Settings(max_k=7, ef_search=99, merge_vectors=5, max_metadata_fields=3)
    tuning = Tuning.of(settings)
    assert tuning.limits.max_k == 7 and tuning.ef_search == 99 and tuning.merge_vectors == 5
    assert tuning.budgets.metadata_fields == 3


def test_the_manifest_format_is_unchanged(single: Path) -> None:
    assert Manifest.read(folder.require_current(single) / folder.MANIFEST).format_version == 2

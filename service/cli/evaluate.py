"""``zhsearch eval``: retrieval quality in BEIR/TREC terms, per mode, with reports."""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from index import EVAL_MODES, QUERY_SCRIPTS, Level, Split, ZhsearchError

if TYPE_CHECKING:
    from index import (
        AnswerReport,
        Document,
        Embedder,
        EvalReport,
        EvalSet,
    )

from .app import AsJson, Bars, CollectionName, IndexDir, Model, app, emit_json, fail, index_folder


def _fresh(index_dir: Path | None) -> Path | None:
    """``--index-dir`` when it holds no index yet: the set's corpus is built into it."""
    from index import has_index

    return index_dir if index_dir is not None and not has_index(index_dir) else None


def _index_for(
    eval_set: EvalSet, path: Path, corpus: Path | None, embedder: Embedder, quiet: bool, into: Path | None
) -> Path:
    """Build (incrementally) an index of the set's corpus, into ``into`` or under the cache folder."""
    from index import build_index, get_settings, read_paths

    source = corpus or eval_set.corpus or path.resolve().parent
    slug = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    target = into or get_settings().cache_dir / "eval-index" / f"{source.name}-{slug}"
    loaded = read_paths([source])
    for skipped in loaded.skipped:
        typer.secho(f"skipped: {skipped.reason}", fg=typer.colors.YELLOW, err=True)
    report = build_index(loaded.documents, target, embedder, progress=Bars(not quiet))
    if not quiet:
        state = "up to date" if report.unchanged else f"built in {report.seconds:.1f}s"
        typer.echo(f"{eval_set.name}: index of {source} ({report.passages} passages) {state}", err=True)
    return target


def _index_of_documents(
    files: list[Path], documents: list[Document], embedder: Embedder, quiet: bool, into: Path | None
) -> Path:
    """Build (incrementally) an index of SQuAD paragraphs, into ``into`` or under the cache folder."""
    from index import build_index, get_settings

    slug = hashlib.sha256("\n".join(str(f.resolve()) for f in files).encode()).hexdigest()[:12]
    target = into or get_settings().cache_dir / "eval-index" / f"squad-{slug}"
    report = build_index(documents, target, embedder, progress=Bars(not quiet))
    if not quiet:
        state = "up to date" if report.unchanged else f"built in {report.seconds:.1f}s"
        typer.echo(f"index of {len(documents)} SQuAD paragraphs ({report.passages} passages) {state}", err=True)
    return target


def _print(report: EvalReport) -> None:
    from index import coverage_notes, metrics_table

    typer.secho(f"\n{report.name}: {len(report.queries)} queries, {report.level} level", bold=True)
    for line in coverage_notes(report):
        typer.echo(line)
    typer.echo(metrics_table(report))
    if report.groups:
        typer.echo(f"\nby {report.split_by} (hybrid):" if "hybrid" in report.modes else f"\nby {report.split_by}:")
        for group, by_mode in report.groups.items():
            mode = "hybrid" if "hybrid" in by_mode else next(iter(by_mode))
            typer.echo(f"  {group}: " + "  ".join(f"{k}={v:.3f}" for k, v in by_mode[mode].items()))


@app.command("eval")
def eval_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Answer-string folders/files (queries.jsonl) or BEIR folders.")
    ] = None,
    squad: Annotated[
        list[Path] | None,
        typer.Option("--squad", help="SQuAD-form files (DRCD, CMRC 2018), pooled into one corpus; repeatable."),
    ] = None,
    query_script: Annotated[
        list[str] | None,
        typer.Option(
            "--query-script",
            help=f"Ask SQuAD questions {' / '.join(QUERY_SCRIPTS)} (rewritten by OpenCC); repeatable.",
        ),
    ] = None,
    split: Annotated[
        Split,
        typer.Option(
            "--split",
            help="The dev or test half: SQuAD questions by article, other sets' queries by a hash of their id.",
        ),
    ] = "all",
    qrels: Annotated[Path | None, typer.Option(help="TREC or BEIR qrels for a queries file.")] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Documents to index for the set (default: the BEIR corpus, or the set's parent folder)."),
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="passage or doc (default: passage for answers, doc for qrels).")
    ] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated modes; naive is the naive dense baseline.")] = ",".join(
        EVAL_MODES
    ),
    split_by: Annotated[
        str | None, typer.Option("--split-by", help="Report metrics per value of this query field.")
    ] = None,
    with_answers: Annotated[bool, typer.Option("--answers", help="Also judge /v1/ask answers (answer sets).")] = False,
    answer_sample: Annotated[
        int,
        typer.Option(
            "--answer-sample",
            min=0,
            help="Judge answers on at most N questions per set, picked by a stable hash of their ids (0: all).",
        ),
    ] = 0,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write DIR/quality.md with charts and runs.")
    ] = None,
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Measure retrieval quality: hit@k, recall@k, MRR@10, nDCG@10, MAP for each mode, and latency."""
    from index import (
        NaiveDense,
        Searcher,
        evaluate,
        evaluate_answers,
        get_settings,
        is_cluster,
        load_configured_embedder,
        load_eval_set,
        load_squad,
        open_configured,
        sample,
        split_set,
        write_report,
    )

    settings = get_settings()
    index_dir = index_folder(index_dir, collection)
    chosen = [m for m in EVAL_MODES if m in {part.strip() for part in modes.split(",")}]
    if not chosen or len(chosen) != len({p.strip() for p in modes.split(",") if p.strip()}):
        raise fail(ZhsearchError(f"--modes takes a comma-separated list of {', '.join(EVAL_MODES)}"))
    if not paths and not squad:
        raise fail(ZhsearchError("name an evaluation set (a path) or SQuAD files (--squad)"))
    judged_at: Level | None = None
    if level is not None:
        if level not in ("passage", "doc"):
            raise fail(ZhsearchError("--level is passage or doc"))
        judged_at = "passage" if level == "passage" else "doc"
    reports: list[EvalReport] = []
    answers: dict[str, AnswerReport] = {}
    try:
        embedder = load_configured_embedder(settings, model=model)
        sets: list[tuple[EvalSet, Path]] = []
        for path in paths or []:
            eval_set = split_set(load_eval_set(path, qrels=qrels), split)
            into = _fresh(index_dir)
            where = _index_for(eval_set, path, corpus, embedder, as_json, into) if into or not index_dir else index_dir
            sets.append((eval_set, where))
        for script in (query_script or ["as-is"]) if squad else []:
            pooled = load_squad(squad or [], query_script=script, split=split)
            into = _fresh(index_dir)
            if into or not index_dir:
                where = _index_of_documents(squad or [], pooled.documents, embedder, as_json, into)
            else:
                where = index_dir
            sets.append((pooled.eval_set, where))
        for eval_set, where in sets:
            if is_cluster(where):  # judging reads the passages of one node's snapshot
                raise ZhsearchError(f"{where} is a cluster index: eval reads a single-node index")
            searcher = open_configured(settings, index_dir=where, embedder=embedder)
            assert isinstance(searcher, Searcher)
            bars = Bars(not as_json)

            def evaluating(done: int, total: int, bars: Bars = bars) -> None:
                bars("evaluate", done, total)

            def answering(done: int, total: int, bars: Bars = bars) -> None:
                bars("answer", done, total)

            def windows(done: int, total: int, bars: Bars = bars) -> None:
                bars("naive", done, total)

            naive = None
            if "naive" in chosen:
                cache = settings.cache_dir / "eval-naive"
                naive = NaiveDense(searcher.document_texts(), embedder, cache_dir=cache, progress=windows)
            report = evaluate(
                searcher,
                eval_set,
                modes=chosen,
                level=judged_at,
                split_by=split_by,
                progress=evaluating,
                naive=naive,
            )
            reports.append(report)
            if with_answers and any(q.answers for q in eval_set.queries):
                result = evaluate_answers(
                    searcher,
                    sample([q for q in eval_set.queries if q.answers], answer_sample),
                    sample(eval_set.unanswerable, answer_sample),
                    progress=answering,
                )
                answers[report.name] = result
            searcher.close()
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if report_dir is not None:
        command = "zhsearch eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        written = write_report(reports, report_dir, command=command, answers=answers or None)
        if not as_json:
            typer.echo(f"report written to {written}", err=True)
    if as_json:
        payload: list[dict[str, Any]] = []
        for report in reports:
            entry: dict[str, Any] = {
                "set": report.name,
                "level": report.level,
                "queries": len(report.queries),
                "metrics": {mode: result.metrics for mode, result in report.modes.items()},
                # queries with nothing relevant to rank, counted as misses (per mode: naive ranks windows)
                "unjudged": {mode: result.unjudged for mode, result in report.modes.items()},
                "not_in_qrels": report.not_in_qrels,
                "ranks": {mode: result.ranks for mode, result in report.modes.items()},
            }
            if report.groups:
                entry["groups"] = report.groups
            if report.name in answers:
                entry["answers"] = answers[report.name].metrics
                if answers[report.name].groups:
                    entry["answers_by_set"] = answers[report.name].groups
                entry["answer_rows"] = [row.__dict__ for row in answers[report.name].rows]
            payload.append(entry)
        emit_json(payload if len(payload) > 1 else payload[0])
        return
    for report in reports:
        _print(report)
        if report.name in answers:
            found = answers[report.name]
            typer.echo("answers: " + "  ".join(f"{k}={v:.3f}" for k, v in found.metrics.items()))
            for group, metrics in found.groups.items():
                typer.echo(f"  {group}: " + "  ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
            for row in found.misses[:10]:
                typer.echo(f"  {row.verdict}: {row.id} {row.question} -> {row.answer} (gold: {' / '.join(row.gold)})")
            if len(found.misses) > 10:
                typer.echo(f"  ... {len(found.misses) - 10} more in --json or --report")

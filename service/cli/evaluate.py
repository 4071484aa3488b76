"""``zhsearch eval``: retrieval quality in BEIR/TREC terms, per mode, with reports."""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from index import ZhsearchError, build_index, get_settings, load_configured_embedder, load_paths
from index.evaluation.evaluate import EvalReport, EvalSet, Level, evaluate, evaluate_answers, load_eval_set
from index.evaluation.report import metrics_table, write_report
from index.models import Embedder
from index.retrieval.query import MODES
from index.retrieval.search import Searcher

from .app import AsJson, Bars, IndexDir, Model, app, emit_json, fail


def _index_for(eval_set: EvalSet, path: Path, corpus: Path | None, embedder: Embedder, quiet: bool) -> Path:
    """Build (incrementally) an index of the set's corpus under the cache folder."""
    source = corpus or eval_set.corpus or path.resolve().parent
    slug = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    target = get_settings().cache_dir / "eval-index" / f"{source.name}-{slug}"
    report = build_index(load_paths([source]), target, embedder, progress=Bars(not quiet))
    if not quiet:
        state = "up to date" if report.unchanged else f"built in {report.seconds:.1f}s"
        typer.echo(f"{eval_set.name}: index of {source} ({report.passages} passages) {state}", err=True)
    return target


def _print(report: EvalReport) -> None:
    typer.secho(f"\n{report.name}: {len(report.queries)} queries, {report.level} level", bold=True)
    typer.echo(metrics_table(report))
    if report.groups:
        typer.echo(f"\nby {report.split_by} (hybrid):" if "hybrid" in report.modes else f"\nby {report.split_by}:")
        for group, by_mode in report.groups.items():
            mode = "hybrid" if "hybrid" in by_mode else next(iter(by_mode))
            typer.echo(f"  {group}: " + "  ".join(f"{k}={v:.3f}" for k, v in by_mode[mode].items()))


@app.command("eval")
def eval_command(
    paths: Annotated[list[Path], typer.Argument(help="Answer-string folders/files (queries.jsonl) or BEIR folders.")],
    qrels: Annotated[Path | None, typer.Option(help="TREC or BEIR qrels for a queries file.")] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Documents to index for the set (default: the BEIR corpus, or the set's parent folder)."),
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="passage or doc (default: passage for answers, doc for qrels).")
    ] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated modes.")] = ",".join(MODES),
    split_by: Annotated[
        str | None, typer.Option("--split-by", help="Report metrics per value of this query field.")
    ] = None,
    with_answers: Annotated[bool, typer.Option("--answers", help="Also judge /v1/ask answers (answer sets).")] = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Write DIR/quality.md with charts and runs.")
    ] = None,
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Measure retrieval quality: hit@k, recall@k, MRR@10, nDCG@10, MAP for each mode, and latency."""
    settings = get_settings()
    chosen = [m for m in MODES if m in {part.strip() for part in modes.split(",")}]
    if not chosen or len(chosen) != len({p.strip() for p in modes.split(",") if p.strip()}):
        raise fail(ZhsearchError(f"--modes takes a comma-separated list of {', '.join(MODES)}"))
    judged_at: Level | None = None
    if level is not None:
        if level not in ("passage", "doc"):
            raise fail(ZhsearchError("--level is passage or doc"))
        judged_at = "passage" if level == "passage" else "doc"
    reports: list[EvalReport] = []
    answers: dict[str, dict[str, float]] = {}
    try:
        embedder = load_configured_embedder(settings, model=model)
        for path in paths:
            eval_set = load_eval_set(path, qrels=qrels)
            where = index_dir or _index_for(eval_set, path, corpus, embedder, as_json)
            searcher = Searcher.load(where, embedder)
            bars = Bars(not as_json)

            def evaluating(done: int, total: int, bars: Bars = bars) -> None:
                bars("evaluate", done, total)

            def answering(done: int, total: int, bars: Bars = bars) -> None:
                bars("answer", done, total)

            report = evaluate(
                searcher,
                eval_set,
                modes=chosen,
                level=judged_at,
                split_by=split_by,
                progress=evaluating,
            )
            reports.append(report)
            if with_answers and eval_set.qrels is None:
                result = evaluate_answers(
                    searcher,
                    eval_set.queries,
                    eval_set.unanswerable,
                    progress=answering,
                )
                answers[report.name] = result.metrics
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
            }
            if report.groups:
                entry["groups"] = report.groups
            if report.name in answers:
                entry["answers"] = answers[report.name]
            payload.append(entry)
        emit_json(payload if len(payload) > 1 else payload[0])
        return
    for report in reports:
        _print(report)
        if report.name in answers:
            typer.echo("answers: " + "  ".join(f"{k}={v:.3f}" for k, v in answers[report.name].items()))

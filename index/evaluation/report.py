"""Writing evaluation results for people and tools: Markdown, a bar chart, TREC run files."""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .answers import AnswerReport
from .evaluate import METRICS, EvalReport

CHART_METRICS = ("hit@1", "mrr@10", "ndcg@10", "recall@10")
#: Sets with more queries list only the ones the best mode misses at rank 1.
PER_QUERY_ALL = 200


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "set"


def metrics_table(report: EvalReport) -> str:
    names = [*METRICS, "p50_ms", "p95_ms"]
    lines = ["| mode | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for mode, result in report.modes.items():
        lines.append(f"| {mode} | " + " | ".join(f"{result.metrics.get(n, 0):.3f}" for n in names) + " |")
    return "\n".join(lines)


def coverage_notes(report: EvalReport) -> list[str]:
    """What a reader must know about which queries the metrics cover (every query, each counted)."""
    notes = []
    for mode, count in report.unjudged.items():
        if count:
            what = "window" if mode == "naive" and report.level == "passage" else "passage"
            if report.level == "doc":
                what = "judged document"
            notes.append(
                f"{mode}: {count} of {len(report.queries)} queries have no {what} holding their answer"
                " in the index; each counts as a miss."
            )
    if report.not_in_qrels:
        notes.append(f"{len(report.not_in_qrels)} queries have no judgment in the qrels and were not evaluated.")
    return notes


def answers_table(found: AnswerReport, rows: int | None = None) -> list[str]:
    """Markdown: each question (all, or the first ``rows`` misses) with its answer, the gold answers and the verdict."""
    shown = found.rows if rows is None else found.misses[:rows]
    lines = ["| id | question | answer | gold | verdict | EM | F1 | score |", "|---|---|---|---|---|---|---|---|"]
    for r in shown:
        answer = _cell(r.answer, 60) if r.answer is not None else "—"
        gold = _cell(" / ".join(r.gold), 40) if r.gold else "(none)"
        score = f"{r.score:.2f}" if r.score is not None else "—"
        lines.append(
            f"| {r.id} | {_cell(r.question)} | {answer} | {gold} | {r.verdict} | {r.exact_match:.0f} | {r.f1:.2f}"
            f" | {score} |"
        )
    return lines


def write_trec_runs(report: EvalReport, folder: Path) -> list[Path]:
    """One TREC run file per mode: ``qid Q0 docid rank score tag``."""
    paths = []
    for mode, result in report.modes.items():
        path = folder / f"{_slug(report.name)}.{mode}.trec"
        with path.open("w", encoding="utf-8") as out:
            for qid, ranking in result.run.items():
                ordered = sorted(ranking.items(), key=lambda item: -item[1])
                for rank, (doc, score) in enumerate(ordered, start=1):
                    out.write(f"{qid} Q0 {doc} {rank} {score:.4f} zhsearch-{mode}\n")
        paths.append(path)
    return paths


def write_chart(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(report.modes)
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    for i, mode in enumerate(modes):
        values = [report.modes[mode].metrics.get(m, 0) for m in CHART_METRICS]
        positions = [x + i * width for x in range(len(CHART_METRICS))]
        ax.bar(positions, values, width, label=mode)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(CHART_METRICS))], CHART_METRICS)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report.name} ({report.level} level, {len(report.queries)} queries)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(text: str, limit: int = 40) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def write_report(
    reports: Sequence[EvalReport],
    folder: Path,
    *,
    command: str,
    answers: dict[str, AnswerReport] | None = None,
) -> Path:
    """``folder/quality.md`` plus ``folder/quality/`` (charts and TREC runs)."""
    assets = folder / "quality"
    assets.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        "# Retrieval quality",
        "",
        f"Produced by `{command}` on {when}, {platform.machine()}, Python {platform.python_version()}.",
        "Metrics from ranx; hit@k is ranx's hit_rate. Latency is per search, in this process.",
        "",
    ]
    for report in reports:
        slug = _slug(report.name)
        write_chart(report, assets / f"{slug}.png")
        write_trec_runs(report, assets)
        lines += [
            f"## {report.name}",
            "",
            f"{len(report.queries)} queries, judged at {report.level} level.",
            "",
            *[f"{note}  " for note in coverage_notes(report)],
            "",
            metrics_table(report),
            "",
            f"![modes compared](quality/{slug}.png)",
            "",
            "TREC runs: " + ", ".join(f"[{m}](quality/{slug}.{m}.trec)" for m in report.modes),
            "",
        ]
        if answers and report.name in answers:
            found = answers[report.name]
            lines += ["Answers (`/v1/ask`): " + ", ".join(f"{k} {v:.3f}" for k, v in found.metrics.items()), ""]
            for group, metrics in found.groups.items():
                lines += [f"- {group}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())]
            if found.groups:
                lines.append("")
            every = len(found.rows) <= PER_QUERY_ALL
            lines += [
                "#### Answers per question" if every else f"#### Answers missed ({len(found.misses)}, first 50)",
                "",
                *answers_table(found, None if every else 50),
                "",
            ]
        if report.groups:
            names = list(METRICS)
            lines += [f"### By {report.split_by}", ""]
            lines.append("| group | mode | " + " | ".join(names) + " |")
            lines.append("|---" * (len(names) + 2) + "|")
            for group, by_mode in report.groups.items():
                for mode, metrics in by_mode.items():
                    lines.append(f"| {group} | {mode} | " + " | ".join(f"{metrics[n]:.3f}" for n in names) + " |")
            lines.append("")
        modes = list(report.modes)
        best = "hybrid" if "hybrid" in report.modes else modes[-1]
        shown = list(report.queries)
        note = ""
        if len(shown) > PER_QUERY_ALL:
            shown = [q for q in shown if report.modes[best].ranks.get(q.id) != 1]
            note = f" Only the {len(shown)} of {len(report.queries)} queries where {best} does not rank first."
        lines += [
            "### Per query",
            "",
            f"Rank of the first relevant result in each mode (— when not in the top 20), and the top result of {best}."
            + note,
            "",
            "| id | query | " + " | ".join(modes) + f" | top result ({best}) |",
            "|---" * (len(modes) + 3) + "|",
        ]
        for query in shown:
            ranks = [report.modes[m].ranks.get(query.id) for m in modes]
            cells = " | ".join(str(r) if r else "—" for r in ranks)
            top = report.modes[best].top.get(query.id, "")
            lines.append(f"| {query.id} | {_cell(query.text)} | {cells} | {_cell(top)} |")
        lines.append("")
    path = folder / "quality.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

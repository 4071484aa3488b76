"""How many windows the span reader reads per question (``READ_WINDOWS``): quality against time (issue 26).

Asks a sample of dev-half questions of DRCD 1.3 and CMRC 2018 (as written) against the pooled index of
every paragraph, once per variant, and prints exact match, character F1, how often the answer's
sentence holds a gold answer, and the mean time of ``ask`` (search included) on this machine. Uses
the shipped calibration to choose among windows, and answers every question (no threshold); run
``calibrate_answers.py`` again after changing the choice.

    .venv/bin/python benchmarks/tune_reader.py [--per-set 300] [--windows 1,2,3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import get_settings, load_configured_embedder  # noqa: E402
from index.evaluation.answer_metrics import exact_match, f1  # noqa: E402
from index.evaluation.evaluate import is_relevant, sample  # noqa: E402
from index.evaluation.squad import load_squad  # noqa: E402
from index.opening import open_configured  # noqa: E402
from index.retrieval import answer  # noqa: E402
from index.text.normalize import normalize  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks" / "reading-comprehension"
FILES = [SHARED / "DRCD_dev.json", SHARED / "cmrc2018_dev.json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-set", type=int, default=300)
    parser.add_argument("--windows", default="1,2,3")
    args = parser.parse_args()
    settings = get_settings()
    embedder = load_configured_embedder(settings)
    from service.cli.evaluate import _index_of_documents

    pooled = load_squad(FILES, split="dev")
    where = _index_of_documents(FILES, pooled.documents, embedder, True, None)
    index = open_configured(settings, index_dir=where, embedder=embedder)
    # Every question answered (no threshold): the variants differ in what they read, not in when they abstain.
    index.answering = dataclasses.replace(index.answering, threshold=0.0)
    by_set: dict[str, list] = {}
    for query in pooled.eval_set.queries:
        by_set.setdefault(query.fields["set"], []).append(query)
    queries = [q for qs in by_set.values() for q in sample(qs, args.per_set)]
    answer.ask(index, queries[0].text)  # warm
    print("| windows | set | EM | F1 | evidence holds gold | abstains | ask ms (mean) |")
    print("|---|---|---|---|---|---|---|")
    for windows in (int(w) for w in args.windows.split(",")):
        answer.READ_WINDOWS = windows
        rows: dict[str, list[tuple[float, float, bool, bool, float]]] = {}
        for query in queries:
            began = time.perf_counter()
            found = answer.ask(index, query.text).answer
            took = (time.perf_counter() - began) * 1000
            golds = [normalize(g) for g in query.answers]
            text = found.text if found else ""
            holds = bool(found) and is_relevant(normalize(found.sentence or found.text), golds)
            rows.setdefault(query.fields["set"], []).append(
                (exact_match(text, query.answers), f1(text, query.answers), holds, found is None, took)
            )
        for name, got in rows.items():
            em, f, holds, silent, ms = (statistics.mean(float(r[i]) for r in got) for i in range(5))
            print(f"| {windows} | {name} | {em:.3f} | {f:.3f} | {holds:.3f} | {silent:.3f} | {ms:.1f} |", flush=True)
    index.close()


if __name__ == "__main__":
    main()

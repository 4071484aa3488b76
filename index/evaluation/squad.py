"""SQuAD-form reading-comprehension sets (DRCD, CMRC 2018) as open-domain retrieval sets.

Every paragraph becomes a document (id ``<file stem>:<paragraph id>``, title the
article's); each question's relevant document is the paragraph it was written on,
and its gold answer strings judge the extractive answers. Each question asked again without
its paragraph (``without`` names the document left out) makes the set of unanswerable
questions that abstention is judged on. Several files pool into
one corpus, so DRCD (traditional) and CMRC (simplified) paragraphs compete.

Questions can be rewritten into another script with OpenCC (``t2s``, ``s2t``,
``s2twp``) to measure cross-script retrieval. ``split`` keeps the ``dev`` or ``test``
half of the articles (a stable hash of file and article id), so choices are tuned
on one half and reported on the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choices import QUERY_SCRIPTS, SPLITS
from ..errors import DocumentError, InvalidInputError
from ..text.ingest import Document
from .evaluate import EvalQuery, EvalSet


@dataclass(frozen=True)
class SquadSet:
    documents: list[Document]
    eval_set: EvalSet


def split_of(file_stem: str, article_id: str) -> str:
    """``dev`` or ``test``: half of the articles each, the same on every machine and run."""
    digest = hashlib.sha256(f"{file_stem}/{article_id}".encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


def _converter(script: str) -> Callable[[str], str]:
    if script == "as-is":
        return lambda text: text
    import opencc

    converter = opencc.OpenCC(script)
    return lambda text: str(converter.convert(text))


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocumentError(f"{path}: not a readable SQuAD JSON file ({exc})") from exc
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise DocumentError(f"{path}: expected a SQuAD file with a top-level 'data' list")
    return [a for a in articles if isinstance(a, dict)]


def load_squad(paths: Sequence[Path], *, query_script: str = "as-is", split: str = "all") -> SquadSet:
    """Documents and questions of one or more SQuAD-form files, pooled."""
    if query_script not in QUERY_SCRIPTS:
        raise InvalidInputError(f"query script must be one of {', '.join(QUERY_SCRIPTS)}, got {query_script!r}")
    if split not in SPLITS:
        raise InvalidInputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    convert = _converter(query_script)
    documents: list[Document] = []
    queries: list[EvalQuery] = []
    unanswerable: list[EvalQuery] = []
    qrels: dict[str, dict[str, int]] = {}
    names = []
    for path in paths:
        stem = path.stem
        names.append(stem)
        for a, article in enumerate(_read(path)):
            article_id = str(article.get("id") or article.get("title") or a)
            half = split_of(stem, article_id)
            title = str(article.get("title") or "")
            contexts = [str(p.get("context") or "") for p in article.get("paragraphs") or []]
            for p, paragraph in enumerate(article.get("paragraphs") or []):
                context = paragraph.get("context")
                if not isinstance(context, str) or not context.strip():
                    raise DocumentError(f"{path}: article {article_id} paragraph {p} has no context")
                doc_id = f"{stem}:{paragraph.get('id') or f'{article_id}-{p}'}"
                # Every paragraph stays in the corpus; only the questions are split.
                documents.append(
                    Document(doc_id, context, title, {"set": stem, "article": article_id, "split": half}, path.name)
                )
                if split != "all" and half != split:
                    continue
                for q, qa in enumerate(paragraph.get("qas") or []):
                    question = qa.get("question")
                    if not isinstance(question, str) or not question.strip():
                        continue
                    answers = tuple(dict.fromkeys(str(x.get("text", "")) for x in qa.get("answers") or []))
                    qid = f"{stem}:{qa.get('id') or f'{doc_id}-{q}'}"
                    # "script" names file and rewrite, so --split-by script separates the pooled sets.
                    script = f"{stem} {query_script}"
                    fields = {"set": stem, "script": script, "article": article_id, "split": half}
                    golds = tuple(a for a in answers if a)
                    queries.append(EvalQuery(qid, convert(question), golds, fields))
                    qrels[qid] = {doc_id: 1}
                    # The same question without its paragraph: unanswerable, unless another paragraph
                    # of the article states a gold answer too (then it is left out of this set).
                    if golds and not any(g in c for g in golds for n, c in enumerate(contexts) if n != p):
                        unanswerable.append(
                            EvalQuery(f"{qid}#without", convert(question), (), fields | {"without": doc_id})
                        )
    name = (
        "+".join(names)
        + ("" if query_script == "as-is" else f" ({query_script})")
        + ("" if split == "all" else f" [{split}]")
    )
    return SquadSet(documents, EvalSet(name, queries, qrels, unanswerable=unanswerable))

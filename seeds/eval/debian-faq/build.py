"""Build corpus.jsonl of the debian-faq BEIR evaluation set, then check the set.

The corpus is cut from the simplified-Chinese Debian documentation that Debian
ships as packages (install them first, as root):

    apt-get update
    apt-get install debian-faq-zh-cn debian-reference-zh-cn

Only the FAQ's question chapters and chapters 2 to 5 of the Debian Reference
are used (no title page, preface, table of contents or licence text).  Run
with the project's virtual environment (it needs lxml):

    . /work/main/.venv/bin/activate
    python seeds/eval/debian-faq/build.py          # rebuild corpus.jsonl, check
    python seeds/eval/debian-faq/build.py --check  # only check the set

Each DocBook section (div.section with an h2/h3/h4 heading) becomes one
document: its heading is the title, and its text is the section's own body,
without its sub-sections (which become documents of their own) and without
footnotes, with whitespace collapsed.  Chapter introductions (the text before
the first section) become documents too.  Documents shorter than MIN_CHARS or longer
than MAX_CHARS characters, and documents whose text is mostly code listings or
tables, are dropped.  queries.jsonl and qrels/test.tsv are written by hand;
this script only checks them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from lxml import html

HERE = Path(__file__).resolve().parent

FAQ_DIR = Path("/usr/share/doc/debian/FAQ/zh-cn")
REF_DIR = Path("/usr/share/debian-reference")

# (package, id prefix, directory, files in reading order)
SOURCES = [
    (
        "debian-faq-zh-cn",
        "faq",
        FAQ_DIR,
        [
            "basic-defs",
            "getting-debian",
            "choosing",
            "compatibility",
            "software",
            "ftparchives",
            "pkg-basics",
            "pkgtools",
            "uptodate",
            "kernel",
            "customizing",
            "support",
            "contributing",
            "redistributing",
            "nextrelease",
        ],
    ),
    (
        "debian-reference-zh-cn",
        "ref",
        REF_DIR,
        ["ch02", "ch03", "ch04", "ch05"],
    ),
]

MIN_CHARS = 150
MAX_CHARS = 3000
MAX_CODE_SHARE = 0.5

# Block elements whose text is not prose: code listings and tables.
CODE_XPATH = ".//pre | .//table"
# Parts of a section that are not its own body.
SKIP_CLASSES = {"titlepage", "toc", "section", "navheader", "navfooter", "footnotes"}

NUMBER_RE = re.compile(r"^(?:第\s*)?(\d+(?:\.\d+)*)\.?\s*(?:章\s*)?")
SPACE_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Collapse runs of whitespace into one space and strip the ends."""
    return SPACE_RE.sub(" ", text).strip()


@cache
def package_version(package: str) -> str:
    """The installed version of a Debian package, or '?' when unknown."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip() or "?"


def own_parts(section) -> list:
    """Child elements of a section that belong to its own body."""
    parts = []
    for child in section:
        if not isinstance(child.tag, str):
            continue
        classes = set((child.get("class") or "").split())
        if classes & SKIP_CLASSES:
            continue
        parts.append(child)
    return parts


def heading(section) -> tuple[str, str, str]:
    """(anchor, number, title) of a section's heading."""
    node = section.find("./div[@class='titlepage']")
    head = node.xpath(".//h1 | .//h2 | .//h3 | .//h4 | .//h5")[0]
    anchors = head.xpath(".//a[@id]")
    anchor = anchors[0].get("id") if anchors else ""
    full = normalize(head.text_content())
    match = NUMBER_RE.match(full)
    number = match.group(1) if match else ""
    title = full[match.end() :].strip() if match else full
    return anchor, number, title


def section_text(parts) -> tuple[str, float]:
    """The normalized text of a section's own body and the share of code."""
    texts = []
    code = 0
    for part in parts:
        text = normalize(part.text_content())
        if not text:
            continue
        texts.append(text)
        if part.tag in ("pre", "table"):
            code += len(text)
        else:
            inner = part.xpath(CODE_XPATH)
            code += sum(len(normalize(x.text_content())) for x in inner)
    body = " ".join(texts)
    return body, (code / len(body) if body else 0.0)


def extract(package: str, prefix: str, directory: Path, name: str) -> list[dict]:
    """All sections of one HTML file as documents (before filtering)."""
    path = next(directory.glob(f"{name}.zh-cn.html"))
    tree = html.parse(str(path))
    root = tree.getroot()
    docs = []
    chapters = root.xpath(
        "//div[contains(concat(' ', @class, ' '), ' chapter ')]"
        " | //div[contains(concat(' ', @class, ' '), ' appendix ')]"
    )
    for chapter in chapters:
        sections = [chapter, *chapter.xpath(".//div[@class='section']")]
        for section in sections:
            anchor, number, title = heading(section)
            body, code_share = section_text(own_parts(section))
            docs.append(
                {
                    "_id": f"{prefix}-{number}",
                    "title": title,
                    "text": body,
                    "source": f"{package} {package_version(package)}: {path}#{anchor}",
                    "code_share": code_share,
                }
            )
    return docs


def build() -> list[dict]:
    """Extract, filter and write corpus.jsonl."""
    kept = []
    dropped = Counter()
    for package, prefix, directory, names in SOURCES:
        for name in names:
            for doc in extract(package, prefix, directory, name):
                size = len(doc["text"])
                if size < MIN_CHARS:
                    dropped["short"] += 1
                elif size > MAX_CHARS:
                    dropped["long"] += 1
                elif doc["code_share"] > MAX_CODE_SHARE:
                    dropped["code"] += 1
                else:
                    del doc["code_share"]
                    kept.append(doc)
    with open(HERE / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc in kept:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"kept {len(kept)} documents; dropped {dict(dropped)}")
    return kept


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as src:
        return [json.loads(line) for line in src if line.strip()]


def check() -> int:
    """Check the set's files against each other; return the number of errors."""
    errors = []
    corpus = read_jsonl(HERE / "corpus.jsonl")
    queries = read_jsonl(HERE / "queries.jsonl")
    corpus_ids = [d["_id"] for d in corpus]
    query_ids = [q["_id"] for q in queries]
    for kind, ids in (("corpus", corpus_ids), ("query", query_ids)):
        for dup, count in Counter(ids).items():
            if count > 1:
                errors.append(f"duplicate {kind} id {dup}")
    for doc in corpus:
        if set(doc) != {"_id", "title", "text", "source"}:
            errors.append(f"{doc['_id']}: fields {sorted(doc)}")
        if not MIN_CHARS <= len(doc["text"]) <= MAX_CHARS:
            errors.append(f"{doc['_id']}: text length {len(doc['text'])}")
    by_id = {q["_id"]: q for q in queries}
    for query in queries:
        qid = query["_id"]
        if set(query) != {"_id", "text", "script", "pair"}:
            errors.append(f"{qid}: fields {sorted(query)}")
        want = "simplified" if qid.startswith("q-") else "taiwan"
        if query.get("script") != want:
            errors.append(f"{qid}: script {query.get('script')}")
        twin = by_id.get(query.get("pair"))
        if twin is None or twin.get("pair") != qid:
            errors.append(f"{qid}: bad pair {query.get('pair')}")
        if query["text"].strip() != query["text"] or not query["text"]:
            errors.append(f"{qid}: empty or padded text")
    qrels: dict[str, set[str]] = {}
    with open(HERE / "qrels" / "test.tsv", encoding="utf-8") as src:
        header = src.readline().rstrip("\n")
        if header != "query-id\tcorpus-id\tscore":
            errors.append(f"qrels header {header!r}")
        for number, line in enumerate(src, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or fields[2] != "1":
                errors.append(f"qrels line {number}: {line!r}")
                continue
            qid, cid, _ = fields
            if qid not in by_id:
                errors.append(f"qrels line {number}: unknown query {qid}")
            if cid not in corpus_ids:
                errors.append(f"qrels line {number}: unknown document {cid}")
            if cid in qrels.get(qid, set()):
                errors.append(f"qrels line {number}: duplicate")
            qrels.setdefault(qid, set()).add(cid)
    for qid in query_ids:
        if not qrels.get(qid):
            errors.append(f"{qid}: no qrels")
        twin = by_id[qid].get("pair")
        if twin in by_id and qrels.get(qid) != qrels.get(twin):
            errors.append(f"{qid}: qrels differ from its pair {twin}")
    for error in errors:
        print("ERROR", error)
    size = (HERE / "corpus.jsonl").stat().st_size
    scripts = Counter(q["script"] for q in queries)
    pairs = sum(len(v) for v in qrels.values())
    print(
        f"corpus: {len(corpus)} documents, {size} bytes; "
        f"queries: {len(queries)} {dict(scripts)}; qrels: {pairs} lines; "
        f"errors: {len(errors)}"
    )
    return len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the set")
    args = parser.parse_args()
    if not args.check:
        build()
    if (HERE / "queries.jsonl").exists():
        sys.exit(1 if check() else 0)


if __name__ == "__main__":
    main()

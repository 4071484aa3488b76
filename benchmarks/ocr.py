"""Which OCR engine reads Chinese scans best on this CPU: character accuracy and seconds a page.

Pages are typeset from known text (``tests/scans.py``, Debian's Noto CJK fonts): three
paragraphs of the seed report in traditional script, and the same paragraphs in simplified
script (OpenCC ``t2s``), each as a clean sans page at 28 px and 20 px, a serif page at 22 px and
32 px, a page turned by 2° and one by -4° (skewed scans), a faded page (30% contrast) and a
blurred one (Gaussian 1.2 px). Accuracy is 1 - edit distance / reference length over the
characters, whitespace ignored and full-width forms folded (NFKC: ， and , count as the same).

Engines: zhsearch's reader (``index.text.ocr``: RapidOCR with the PP-OCRv6 small models in its
wheel, deskewing, layout), and Tesseract 5 with ``chi_sim``, ``chi_tra`` and both (when the
``tesseract`` command is installed: Debian's tesseract-ocr, tesseract-ocr-chi-sim,
tesseract-ocr-chi-tra), each run on the same page images, one page at a time.

Each measurement is made on two halves of the text: the reader's settings (``index/text/ocr.py``)
were chosen on the "tuning" pages; the "held-out" pages typeset other paragraphs.

    .venv/bin/python benchmarks/ocr.py [--engines zhsearch] [--out benchmarks/out/ocr.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scans import accuracy, have_fonts, image_bytes, page_image  # noqa: E402

CASES: list[tuple[str, dict[str, Any]]] = [
    ("sans 28 px", {"font": "sans", "size": 28}),
    ("sans 20 px", {"font": "sans", "size": 20}),
    ("serif 22 px", {"font": "serif", "size": 22}),
    ("serif 32 px", {"font": "serif", "size": 32}),
    ("skewed 2°", {"skew": 2.0}),
    ("skewed -4°", {"skew": -4.0}),
    ("low contrast 30%", {"contrast": 0.3}),
    ("blurred 1.2 px", {"blur": 1.2}),
]


#: Paragraphs of the seed report each half typesets: the reader's settings were chosen on "tuning" alone.
HALVES = {"tuning": slice(3, 6), "held-out": slice(8, 11)}


def texts(half: str = "tuning") -> dict[str, list[str]]:
    import opencc

    report = (ROOT / "seeds" / "000_faeb4e7ef88eceb9.txt").read_text(encoding="utf-8")
    paragraphs = [line.strip()[:110] for line in report.splitlines() if len(line.strip()) > 60][HALVES[half]]
    simplified = opencc.OpenCC("t2s")
    return {"zh-tw": paragraphs, "zh-cn": [simplified.convert(p) for p in paragraphs]}


def zhsearch_reader() -> Callable[[Any], str]:
    from index.text.ocr import read_image

    return lambda page: read_image(page).text


def tesseract(languages: str) -> Callable[[Any], str]:
    def read(page: Any) -> str:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", languages, "--psm", "3"],
            input=image_bytes(page),
            capture_output=True,
            check=True,
            timeout=300,
        )
        return done.stdout.decode("utf-8")

    return read


def folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ocr.json")
    parser.add_argument("--engines", default="all", help="all, or zhsearch (this reader alone)")
    args = parser.parse_args()
    if not have_fonts():
        sys.exit("needs Debian's fonts-noto-cjk (make system-deps) to typeset the pages")
    engines: dict[str, Callable[[Any], str]] = {"zhsearch (RapidOCR PP-OCRv6 small)": zhsearch_reader()}
    if args.engines == "zhsearch":
        pass
    elif shutil.which("tesseract"):
        for languages in ("chi_sim", "chi_tra", "chi_sim+chi_tra"):
            engines[f"Tesseract {languages}"] = tesseract(languages)
    else:
        print("note: no tesseract command; measuring zhsearch's reader alone", file=sys.stderr)
    engines["zhsearch (RapidOCR PP-OCRv6 small)"](page_image(["預熱"]))  # load the models once
    rows: list[dict[str, Any]] = []
    for half in HALVES:
        for script, paragraphs in texts(half).items():
            reference = folded("".join(paragraphs))
            for case, options in CASES:
                page = page_image(paragraphs, script=script, **options)
                for engine, read in engines.items():
                    began = time.perf_counter()
                    text = read(page)
                    seconds = time.perf_counter() - began
                    score = accuracy(reference, folded(text))
                    rows.append(
                        {
                            "half": half,
                            "engine": engine,
                            "script": script,
                            "page": case,
                            "accuracy": score,
                            "seconds": seconds,
                        }
                    )
                    print(
                        f"{half:8s} {engine:38s} {script} {case:18s} accuracy {score:.3f}  {seconds:5.2f} s",
                        file=sys.stderr,
                    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    summary = []
    for half in HALVES:
        print(f"\nOCR, {half} half: {len(CASES) * 2} typeset pages ({machine})\n")
        print("| engine | simplified | traditional | worst page | s/page (median) |")
        print("|---|---|---|---|---|")
        for engine in engines:
            mine = [row for row in rows if row["engine"] == engine and row["half"] == half]
            item = {
                "half": half,
                "engine": engine,
                "zh-cn": statistics.mean(row["accuracy"] for row in mine if row["script"] == "zh-cn"),
                "zh-tw": statistics.mean(row["accuracy"] for row in mine if row["script"] == "zh-tw"),
                "worst": min(row["accuracy"] for row in mine),
                "seconds_per_page": statistics.median(row["seconds"] for row in mine),
            }
            summary.append(item)
            print(
                f"| {engine} | {item['zh-cn']:.3f} | {item['zh-tw']:.3f} | {item['worst']:.3f}"
                f" | {item['seconds_per_page']:.2f} |"
            )
        print("\n| page | " + " | ".join(f"{engine} cn / tw" for engine in engines) + " |")
        print("|---|" + "---|" * len(engines))
        for case, _ in CASES:
            cells = []
            for engine in engines:
                found = {
                    row["script"]: row["accuracy"]
                    for row in rows
                    if row["engine"] == engine and row["page"] == case and row["half"] == half
                }
                cells.append(f"{found['zh-cn']:.3f} / {found['zh-tw']:.3f}")
            print(f"| {case} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": machine, "summary": summary, "pages": rows}, ensure_ascii=False, indent=1)
    )


if __name__ == "__main__":
    main()

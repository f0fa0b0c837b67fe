#!/usr/bin/env python3
"""Writes tests/data/quant_vectors.gguf: dequantization references from gguf-py.

For each quantized type braid reads (ggml's legacy 32-element types and the K-quants) the
file holds, written by gguf-py's GGUFWriter:
  <type>          random but valid raw blocks (random bytes; the f16 scale fields set to
                  finite values, normal and subnormal, of either sign)
  <type>.f32      gguf-py's numpy dequantization of those blocks (gguf.quants.dequantize)
and for the types gguf-py can also quantize (q4_0, q4_1, q5_0, q5_1, q8_0):
  <type>.source   random floats
  <type>.gguf_py  gguf-py's quantization of them (bit-exact with ggml's reference)
tests/quant_vectors_test.cpp loads the file with braid's reader and checks braid's to_f32
and from_f32 against these bit for bit.

Needs: pip install gguf numpy. Run from the repository root:
  python3 scripts/make_quant_vectors.py
"""
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

# type: (block elements, block bytes, byte offsets of the f16 scale fields)
LAYOUTS = {
    T.Q4_0: (32, 18, [0]),
    T.Q4_1: (32, 20, [0, 2]),
    T.Q5_0: (32, 22, [0]),
    T.Q5_1: (32, 24, [0, 2]),
    T.Q8_0: (32, 34, [0]),
    T.Q2_K: (256, 84, [80, 82]),
    T.Q3_K: (256, 110, [108]),
    T.Q4_K: (256, 144, [0, 2]),
    T.Q5_K: (256, 176, [0, 2]),
    T.Q6_K: (256, 210, [208]),
}
QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
ROWS = 2
BLOCKS_PER_ROW = 4


def random_f16(rng, n):
    """Finite f16 values: mostly normal magnitudes 1e-4..2, some subnormal, some zero."""
    values = rng.uniform(-2.0, 2.0, n) * 10.0 ** rng.uniform(-4, 0, n)
    h = values.astype(np.float16)
    kinds = rng.integers(0, 10, n)
    subnormal = (rng.integers(1, 1024, n).astype(np.uint16) | (rng.integers(0, 2, n).astype(np.uint16) << 15)).view(np.float16)
    h = np.where(kinds == 0, subnormal, h)
    h = np.where(kinds == 1, np.float16(0.0), h)
    return h


def main():
    rng = np.random.default_rng(20240612)
    writer = gguf.GGUFWriter("tests/data/quant_vectors.gguf", "braid-quant-vectors")
    writer.add_description("Raw quantized blocks and gguf-py's dequantization of them; see scripts/make_quant_vectors.py")
    for qtype, (elements, nbytes, half_fields) in LAYOUTS.items():
        name = qtype.name.lower()
        blocks = rng.integers(0, 256, (ROWS * BLOCKS_PER_ROW, nbytes), dtype=np.uint8)
        for offset in half_fields:
            blocks[:, offset:offset + 2] = random_f16(rng, len(blocks)).view(np.uint8).reshape(-1, 2)
        raw = blocks.reshape(ROWS, BLOCKS_PER_ROW * nbytes)
        values = dequantize(raw, qtype).astype(np.float32)
        assert values.shape == (ROWS, BLOCKS_PER_ROW * elements) and np.all(np.isfinite(values))
        writer.add_tensor(name, raw, raw_dtype=qtype)
        writer.add_tensor(name + ".f32", values)
        if qtype in QUANTIZABLE:
            source = (rng.standard_normal((ROWS, BLOCKS_PER_ROW * elements)) * rng.uniform(0.01, 3.0, (ROWS, 1))).astype(np.float32)
            source[0, :elements] = 0.0  # an all-zero block: d = 0
            writer.add_tensor(name + ".source", source)
            writer.add_tensor(name + ".gguf_py", quantize(source, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes tests/data/gguf/dequant-vectors.json: for every ggml type bringup reads, blocks of
bytes and the fp32 values gguf-py (llama.cpp's own Python package, an implementation independent
of ggml's C and of bringup's) decodes them to, as 32-bit patterns so the test compares bits.

The simple types' blocks are gguf-py's quantization of random rows; the K-quant types' (which
gguf-py cannot quantize) are random bytes with finite scales. Run once, with llama.cpp's source
from scripts/llama_cpp_source.sh:

    python3 scripts/gguf_vectors.py --llama-cpp "$(scripts/llama_cpp_source.sh ~/.cache/bringup)"
"""

import argparse
import json
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source (with gguf-py/)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                  "gguf", "dequant-vectors.json"))
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    from gguf import GGMLQuantizationType as T, quants
    from gguf.constants import GGML_QUANT_SIZES

    rng = np.random.default_rng(args.seed)
    out = {"generator": "gguf-py (llama.cpp, from node-llama-cpp 3.21.1) quants.py", "types": []}
    for t in (T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K):
        block, size = GGML_QUANT_SIZES[t]
        n = max(block * 4, 256)
        if t in (T.Q4_K, T.Q5_K, T.Q6_K):
            raw = rng.integers(0, 256, size=(n // block, size), dtype=np.uint8)
            # Finite scales (f16 fields): a random exponent in a range real weights use.
            scales = (rng.standard_normal(n // block * 2) * 1e-2).astype(np.float16).view(np.uint8)
            scales = scales.reshape(n // block, 4)
            if t == T.Q6_K:
                raw[:, size - 2:] = scales[:, :2]
            else:
                raw[:, :4] = scales
            data = raw.reshape(-1)
        else:
            rows = (rng.standard_normal(n) * rng.choice([1e-3, 1e-1, 3.0], n)).astype(np.float32)
            rows[::17] = 0.0
            data = quants.quantize(rows.reshape(1, n), t).reshape(-1)
        values = quants.dequantize(data.reshape(1, -1), t).reshape(-1).astype(np.float32)
        assert values.size == n
        out["types"].append({"type": t.name, "elements": n, "bytes": data.tobytes().hex(),
                             "values_f32_bits": [f"{v:08x}" for v in values.view(np.uint32)]})
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

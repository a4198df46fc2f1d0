#!/usr/bin/env python3
"""Write tests/data/rope/parameters.json: RoPE inverse frequencies and attention factors as
transformers 4.49 computes them (modeling_rope_utils.py, and Qwen2RotaryEmbedding's dynamic update
for `dynamic`), for one config of each scaling type, so the unit tests compare bringup's values with
transformers' own rather than with numbers written by hand. Needs ../shared/python and Debian's
python3-torch:

    PYTHONPATH=../shared/python /usr/bin/python3 scripts/rope_reference.py > tests/data/rope/parameters.json

Each case: the config fields, and per sequence length (`seq_len`, the length the sequence reaches in
a forward call; only `dynamic` depends on it) the inverse frequencies as float32 bit patterns and the
attention factor.
"""

import json
import struct

import torch
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

CASES = [
    ("default", 128, 1e6, 32768, None),
    ("linear", 64, 10000.0, 2048, {"type": "linear", "factor": 2.5}),
    ("dynamic", 128, 1e6, 4096, {"rope_type": "dynamic", "factor": 3.0}),
    ("yarn", 128, 1e6, 32768, {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}),
    ("yarn-golden", 32, 1e6, 512, {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}),
    ("yarn-betas", 64, 10000.0, 4096,
     {"rope_type": "yarn", "factor": 8.0, "beta_fast": 16.0, "beta_slow": 2.0, "attention_factor": 1.25}),
    ("llama3", 128, 500000.0, 131072,
     {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}),
]


def bits(t):
    return [struct.unpack("<I", struct.pack("<f", float(x)))[0] for x in t.tolist()]


def main():
    out = []
    for name, head_dim, theta, max_pos, scaling in CASES:
        cfg = Qwen2Config(hidden_size=head_dim * 4, num_attention_heads=4, num_key_value_heads=4,
                          rope_theta=theta, max_position_embeddings=max_pos, rope_scaling=scaling)
        lengths = [1, max_pos // 2, max_pos]
        if scaling and scaling.get("rope_type", scaling.get("type")) == "dynamic":
            lengths += [max_pos + 1, max_pos * 2 + 37, max_pos * 3]
        rows = []
        for seq_len in lengths:
            rope = Qwen2RotaryEmbedding(cfg)  # a fresh one: the dynamic update keeps state
            x = torch.zeros(1, dtype=torch.float32)
            rope(x, torch.tensor([[seq_len - 1]]))
            rows.append({"seq_len": seq_len, "inv_freq_bits": bits(rope.inv_freq),
                         "attention_factor": float(rope.attention_scaling)})
        config = {"head_dim": head_dim, "rope_theta": theta, "max_position_embeddings": max_pos,
                  "rope_scaling": scaling}
        out.append({"name": name, "config": config, "lengths": rows})
    print(json.dumps({"generator": "transformers " + __import__("transformers").__version__ +
                      ", torch " + torch.__version__, "cases": out}, indent=1))


if __name__ == "__main__":
    main()

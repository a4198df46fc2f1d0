#!/usr/bin/env python3
"""Write the RoPE-scaling goldens beside the shared ones: llama3, linear and dynamic scaling on the
weights of two small goldens (their model.safetensors linked, not copied), each with a prompt
inside the original context and one past it, scored by transformers through scripts/hf_reference.py
(fp32 greedy reference with logits, and transformers' own bf16 anchor). Needs ../shared/python and
Debian's python3-torch:

    PYTHONPATH=../shared/python /usr/bin/python3 scripts/scaled_goldens.py

The shared qwen2-yarn-small golden covers YaRN.
"""

import json
import os
import random
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")

SCALED = [
    # name, base golden, config changes, prompt lengths
    ("llama-llama3-small", "llama-gqa4-small",
     {"max_position_embeddings": 1024,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 256}},
     [24, 400]),
    ("llama-linear-small", "llama-gqa4-small",
     {"max_position_embeddings": 256, "rope_scaling": {"type": "linear", "factor": 2.0}},
     [20, 300]),
    ("qwen2-dynamic-small", "qwen2-gqa7-small",
     {"max_position_embeddings": 256, "rope_scaling": {"type": "dynamic", "factor": 4.0}},
     [16, 360]),
]


def main():
    for name, base, changes, lengths in SCALED:
        out = os.path.join(GOLDEN, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(GOLDEN, base, "config.json")) as f:
            config = json.load(f)
        config.update(changes)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        shutil.copy(os.path.join(GOLDEN, base, "generation_config.json"), out)
        link = os.path.join(out, "model.safetensors")
        if not os.path.lexists(link):
            os.symlink(os.path.join("..", base, "model.safetensors"), link)
        vocab = config["vocab_size"]
        rng = random.Random(name)
        args = []
        for i, n in enumerate(lengths):
            ids_file = os.path.join(out, f"prompt{i}.json")
            with open(ids_file, "w") as f:
                json.dump([rng.randrange(vocab) for _ in range(n)], f)
            args += ["--prompt-ids-file", ids_file]
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "hf_reference.py"), "--model", out,
                        *args, "--max-new-tokens", "32", "--logits", "--bf16-anchor",
                        "--out", os.path.join(out, "reference.json")], check=True)
        for i in range(len(lengths)):
            os.remove(os.path.join(out, f"prompt{i}.json"))


if __name__ == "__main__":
    main()

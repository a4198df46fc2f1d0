#!/usr/bin/env python3
"""Write a bringup-reference/1 file (shared/docs/reference-format.md) from Hugging Face
transformers, for scoring the engine with `bringup eval --reference FILE` on machines where the
checkpoint is too large for the project's own fp32 path.

For each prompt: Qwen2ForCausalLM in float32 with eager attention generates greedily with its KV
cache; every step's top-5 ids and logits are recorded (optionally all logits as .npy), and the
prompt's hidden states (output_hidden_states) on request. With --bf16-anchor the model is loaded
again in bfloat16 and teacher-forced through the same tokens, giving Hugging Face's own bf16 score
that the engine's policies are compared against.

    pip install torch transformers numpy
    python3 scripts/hf_reference.py --model /path/to/Arcee-Spark \\
        --prompt "The capital of France is" --prompt-ids-file ids.json \\
        --max-new-tokens 64 --logits --hidden-states --bf16-anchor --out arcee/reference.json

Each --prompt (text, tokenized with the checkpoint's tokenizer) and --prompt-ids-file (a JSON list
of ids) becomes one case, named case0, case1, ... in the order given.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def sha256_files(paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def weight_files(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return [single]
    return sorted(os.path.join(model_dir, f) for f in os.listdir(model_dir) if f.endswith(".safetensors"))


def load(model_dir, dtype):
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation="eager")
    model.eval()
    return model


@torch.no_grad()
def greedy_case(model, prompt_ids, n, keep_logits):
    """Greedy continuation with the KV cache; row i of the top-5 predicts reference_ids[i]."""
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1].float()
    case = {"prompt_ids": list(prompt_ids), "reference_ids": [], "top5_ids": [], "top5_logits": []}
    rows = []
    for i in range(n):
        top = torch.topk(logits, 5)
        next_id = int(torch.argmax(logits))
        case["top5_ids"].append([int(t) for t in top.indices])
        case["top5_logits"].append([float(v) for v in top.values])
        case["reference_ids"].append(next_id)
        if keep_logits:
            rows.append(logits.numpy().astype(np.float32))
        if i + 1 < n:
            out = model(input_ids=torch.tensor([[next_id]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1].float()
    return case, (np.stack(rows) if keep_logits else None)


@torch.no_grad()
def teacher_forced(model, prompt_ids, reference_ids):
    """The seed's teacher forcing: prefill, then decode the reference tokens one by one.
    Returns (argmax matches, top-5 matches)."""
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1].float()
    top1 = top5 = 0
    for i, ref in enumerate(reference_ids):
        top = torch.topk(logits, 5).indices.tolist()
        top1 += int(torch.argmax(logits)) == ref
        top5 += ref in top
        if i + 1 < len(reference_ids):
            out = model(input_ids=torch.tensor([[ref]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1].float()
    return top1, top5


@torch.no_grad()
def hidden_states(model, prompt_ids):
    """[L + 1, T, H]: the embedding, each layer's output, the last one after the final norm."""
    out = model(input_ids=torch.tensor([prompt_ids]), output_hidden_states=True)
    return np.stack([h[0].float().numpy() for h in out.hidden_states]).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--prompt", action="append", default=[], help="prompt text (repeatable)")
    ap.add_argument("--prompt-ids-file", action="append", default=[], help="JSON list of ids (repeatable)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--logits", action="store_true", help="write every step's logits as .npy")
    ap.add_argument("--hidden-states", action="store_true", help="write the prompts' hidden states as .npy")
    ap.add_argument("--bf16-anchor", action="store_true", help="also score Hugging Face in bfloat16")
    ap.add_argument("--out", required=True, help="reference JSON to write (.npy files go beside it)")
    args = ap.parse_args()

    prompts = []
    if args.prompt:
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        prompts += [tokenizer(p, add_special_tokens=False)["input_ids"] for p in args.prompt]
    for f in args.prompt_ids_file:
        with open(f) as fh:
            ids = json.load(fh)
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
            sys.exit(f"{f}: expected a JSON list of token ids")
        prompts.append(ids)
    if not prompts:
        sys.exit("give at least one --prompt or --prompt-ids-file")
    if args.max_new_tokens < 1:
        sys.exit("--max-new-tokens must be at least 1")

    out_dir = os.path.dirname(os.path.abspath(args.out))
    stem = os.path.splitext(os.path.basename(args.out))[0]
    model = load(args.model, torch.float32)
    vocab = model.config.vocab_size
    for p in prompts:
        if max(p) >= vocab:
            sys.exit(f"prompt id {max(p)} is outside the model's vocabulary ({vocab})")

    cases = []
    for n, prompt in enumerate(prompts):
        name = f"case{n}"
        case, logits = greedy_case(model, prompt, args.max_new_tokens, args.logits)
        case = {"name": name, **case}
        case["teacher_forced_argmax_matches"] = teacher_forced(model, prompt, case["reference_ids"])[0]
        if args.logits:
            case["logits_npy"] = f"{stem}_logits_{name}.npy"
            np.save(os.path.join(out_dir, case["logits_npy"]), logits)
        if args.hidden_states:
            case["hidden_states_npy"] = f"{stem}_hidden_states_{name}.npy"
            np.save(os.path.join(out_dir, case["hidden_states_npy"]), hidden_states(model, prompt))
        cases.append(case)
        print(f"{name}: {len(prompt)} prompt tokens, {len(case['reference_ids'])} reference tokens", file=sys.stderr)
    del model

    ref = {
        "format": "bringup-reference/1",
        "model": os.path.basename(os.path.normpath(args.model)),
        "weights_sha256": sha256_files(weight_files(args.model)),
        "generator": f"transformers {transformers.__version__} Qwen2ForCausalLM float32 eager, "
                     f"greedy with KV cache; torch {torch.__version__}",
    }
    if args.bf16_anchor:
        bf16 = load(args.model, torch.bfloat16)
        total1 = total5 = steps = 0
        for case in cases:
            t1, t5 = teacher_forced(bf16, case["prompt_ids"], case["reference_ids"])
            k = len(case["reference_ids"])
            case["hf_bf16"] = {"top1": t1 / k, "top5": t5 / k}
            total1, total5, steps = total1 + t1, total5 + t5, steps + k
        ref["hf_bf16_anchor"] = {"top1": total1 / steps, "top5": total5 / steps}
    ref["cases"] = cases
    with open(args.out, "w") as f:
        json.dump(ref, f)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

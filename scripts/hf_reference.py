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
of ids) becomes one case, named case0, case1, ... in the order given, or by --name (repeatable, in
the same order). --cases FILE takes a JSON list of {"name", "prompt" or "prompt_ids",
"max_new_tokens"} instead, and --like FILE the cases of an existing reference (names, prompts and
token counts): regenerating a golden's reference is

    python3 scripts/hf_reference.py --model DIR --like DIR/reference.json --out /tmp/ref.json

The folder of --out is created first, and every case is checked before any model work.

bringup's Python module carries a copy of this file (bringup.hf_reference): `python3 -m
bringup.eval --hf-reference` makes its references with the same code.
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


def generator_name(model):
    return (f"transformers {transformers.__version__} {type(model).__name__} float32 eager, "
            f"greedy with KV cache; torch {torch.__version__}")


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


def parse_cases(args):
    """[(name, prompt ids or text, max_new_tokens)] from the arguments, checked."""
    specs = []
    if args.cases or args.like:
        if args.prompt or args.prompt_ids_file or args.name:
            sys.exit("give --cases / --like, or --prompt / --prompt-ids-file, not both")
        src = args.cases or args.like
        with open(src) as f:
            data = json.load(f)
        if args.like:
            data = [{"name": c["name"], "prompt_ids": c["prompt_ids"],
                     "max_new_tokens": len(c["reference_ids"])} for c in data["cases"]]
        if not isinstance(data, list):
            sys.exit(f"{src}: expected a JSON list of cases")
        for i, c in enumerate(data):
            if not isinstance(c, dict) or ("prompt" in c) == ("prompt_ids" in c):
                sys.exit(f"{src}: case {i} needs exactly one of 'prompt' and 'prompt_ids'")
            specs.append((c.get("name", f"case{i}"), c.get("prompt", c.get("prompt_ids")),
                          c.get("max_new_tokens", args.max_new_tokens)))
    else:
        prompts = list(args.prompt)
        for f in args.prompt_ids_file:
            with open(f) as fh:
                prompts.append(json.load(fh))
        if args.name and len(args.name) != len(prompts):
            sys.exit(f"--name given {len(args.name)} times for {len(prompts)} prompts")
        names = args.name or [f"case{i}" for i in range(len(prompts))]
        specs = [(n, p, args.max_new_tokens) for n, p in zip(names, prompts)]
    if not specs:
        sys.exit("give at least one --prompt, --prompt-ids-file, --cases or --like")
    names = [n for n, _, _ in specs]
    for name in names:
        if not isinstance(name, str) or not name or not all(ch.isalnum() or ch in "-_." for ch in name):
            sys.exit(f"case name {name!r}: use letters, digits, '-', '_' and '.'")
    if len(set(names)) != len(names):
        sys.exit("case names must differ")
    tokenizer = None
    cases = []
    for name, prompt, n in specs:
        if not isinstance(n, int) or n < 1:
            sys.exit(f"case {name}: max_new_tokens must be at least 1")
        if isinstance(prompt, str):
            if tokenizer is None:
                try:
                    tokenizer = AutoTokenizer.from_pretrained(args.model)
                except Exception as e:  # e.g. no tokenizers library: give ids instead
                    sys.exit(f"case {name}: cannot load the tokenizer of {args.model} ({e}); "
                             "give prompt ids instead")
            prompt = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not isinstance(prompt, list) or not all(isinstance(i, int) and i >= 0 for i in prompt):
            sys.exit(f"case {name}: expected a list of token ids")
        if not prompt:
            sys.exit(f"case {name}: the prompt has no tokens")
        cases.append((name, prompt, n))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--prompt", action="append", default=[], help="prompt text (repeatable)")
    ap.add_argument("--prompt-ids-file", action="append", default=[], help="JSON list of ids (repeatable)")
    ap.add_argument("--name", action="append", default=[], help="case names, in prompt order (repeatable)")
    ap.add_argument("--cases", help="JSON list of {name, prompt | prompt_ids, max_new_tokens}")
    ap.add_argument("--like", help="take the cases of this reference file")
    ap.add_argument("--max-new-tokens", type=int, default=32, help="per case, unless the case says")
    ap.add_argument("--logits", action="store_true", help="write every step's logits as .npy")
    ap.add_argument("--hidden-states", action="store_true", help="write the prompts' hidden states as .npy")
    ap.add_argument("--bf16-anchor", action="store_true", help="also score Hugging Face in bfloat16")
    ap.add_argument("--out", required=True, help="reference JSON to write (.npy files go beside it)")
    args = ap.parse_args()

    prompts = parse_cases(args)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        sys.exit(f"--out {args.out}: cannot create its folder ({e.strerror})")
    if not os.access(out_dir, os.W_OK):
        sys.exit(f"--out {args.out}: its folder is not writable")
    stem = os.path.splitext(os.path.basename(args.out))[0]
    model = load(args.model, torch.float32)
    vocab = model.config.vocab_size
    for name, p, _ in prompts:
        if max(p) >= vocab:
            sys.exit(f"case {name}: prompt id {max(p)} is outside the model's vocabulary ({vocab})")

    cases = []
    for name, prompt, n in prompts:
        case, logits = greedy_case(model, prompt, n, args.logits)
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
    generator = generator_name(model)
    del model

    ref = {
        "format": "bringup-reference/1",
        "model": os.path.basename(os.path.normpath(args.model)),
        "weights_sha256": sha256_files(weight_files(args.model)),
        "generator": generator,
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

"""The eval harness in Python, as the reference bring-up's eval.py runs it:

    python3 -m bringup.eval MODEL --model DIR [--prompt-file F] [--max-new-tokens N]
        [--precision P] [--reference FILE | --hf-reference]

teacher-forces bringup's model through a reference and prints ``Top-1 accuracy: ...`` /
``Top-5 accuracy: ...`` and ``YT_METRICS={...}``, with the same scores as ``bringup eval``. The
reference is a bringup-reference/1 file (--reference), Hugging Face's model in this process
(--hf-reference: greedy in float32 with eager attention, needs transformers), or else the
project's exact fp32 path on the prompt. MODEL labels the results (default: the directory's
name).
"""

import argparse
import json
import os
import sys

from . import _bringup


def accuracy_line(label, hits, total):
    f = hits / total if total else 0.0
    return f"{label} accuracy: {100.0 * f:.2f}% ({f:.4f})"


def hf_reference_cases(model_dir, prompts, max_new_tokens):
    """Greedy continuations by transformers in float32 (eager attention), as
    scripts/hf_reference.py makes them (it is copied into this package): bringup-reference/1
    JSON and the [N, vocab] logits of each case."""
    from . import hf_reference

    hf = hf_reference.load(model_dir, hf_reference.torch.float32)
    cases, logits = [], []
    for n, prompt in enumerate(prompts):
        case, steps = hf_reference.greedy_case(hf, prompt, max_new_tokens, True)
        cases.append({"name": f"case{n}", **case})
        logits.append(steps)
    ref = {"format": "bringup-reference/1", "model": os.path.basename(os.path.normpath(model_dir)),
           "generator": hf_reference.generator_name(hf) + " (in process)", "cases": cases}
    return json.dumps(ref), logits


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m bringup.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", nargs="?", metavar="MODEL", help="label for the results")
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--precision", default="",
                    help="fp32, bf16, bfp8-mixed, bfp8 or native (default: native for a GGUF file, "
                         "else bfp8-mixed)")
    ap.add_argument("--kv-precision", default="",
                    help="how the KV cache stores K and V: fp32, bf16 or bfp8 (default: fp32 under "
                         "fp32, else bf16)")
    ap.add_argument("--reference", help="bringup-reference/1 file")
    ap.add_argument("--hf-reference", action="store_true",
                    help="make the reference with transformers in this process")
    ap.add_argument("--prompt-file", help="prompt text (UTF-8), through the checkpoint's tokenizer")
    ap.add_argument("--prompt-ids", help="prompt ids, e.g. 1,2,3")
    ap.add_argument("--max-new-tokens", type=int, default=20,
                    help="reference tokens made from the prompt (default 20)")
    ap.add_argument("--max-seq-len", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--prefill-decode", action="store_true",
                    help="push the prompt through the decode path one token at a time")
    a = ap.parse_args(argv)
    try:
        return run(a)
    except _bringup.Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(a):
    if a.reference and a.hf_reference:
        raise _bringup.Error("give either --reference or --hf-reference, not both")
    if a.max_new_tokens < 1:
        raise _bringup.Error("--max-new-tokens must be at least 1")
    prompt = None
    if a.prompt_file and a.prompt_ids:
        raise _bringup.Error("give either --prompt-file or --prompt-ids, not both")
    if a.prompt_file:
        with open(a.prompt_file, "rb") as f:
            try:
                text = f.read().decode("utf-8")
            except UnicodeDecodeError:
                raise _bringup.Error(f"--prompt-file '{a.prompt_file}' is not valid UTF-8")
        prompt = _bringup.Tokenizer.load(a.model).encode(text)
        if not prompt:
            raise _bringup.Error(f"--prompt-file '{a.prompt_file}' tokenizes to no tokens")
    elif a.prompt_ids:
        try:
            prompt = [int(t) for t in a.prompt_ids.replace(",", " ").split()]
        except ValueError:
            raise _bringup.Error("--prompt-ids: expected integers such as 1,2,3")
    if a.reference and prompt is not None:
        raise _bringup.Error("give either --reference or a prompt, not both")

    checkpoint = _bringup.Checkpoint.open(a.model)
    name = a.name or checkpoint.name
    reference_json, logits = "", []
    if a.hf_reference:
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise _bringup.Error("--hf-reference needs transformers (put ../shared/python on "
                                 "PYTHONPATH); use --reference FILE otherwise")
        reference_json, logits = hf_reference_cases(
            a.model, [prompt or list(range(1, 13))], a.max_new_tokens)
    device = _bringup.Device(a.threads)
    model = _bringup.build_model(checkpoint, device, max_seq_len=a.max_seq_len,
                                 precision=a.precision, kv_precision=a.kv_precision)
    metrics, cases = model.evaluate(reference_file=a.reference or "",
                                    reference_json=reference_json, logits=logits,
                                    prefill_decode=a.prefill_decode, model_name=name,
                                    checkpoint=checkpoint, prompt=prompt,
                                    max_new_tokens=a.max_new_tokens)
    for c in cases:
        print(f"case {c['name']}: prompt {c['prompt_len']} tokens, {c['steps']} scored steps")
        print(accuracy_line("Top-1", c["top1"], c["steps"]))
        print(accuracy_line("Top-5", c["top5"], c["steps"]))
    steps = sum(c["steps"] for c in cases)
    print(f"overall ({len(cases)} case{'' if len(cases) == 1 else 's'}, {model.precision})")
    print(accuracy_line("Top-1", sum(c["top1"] for c in cases), steps))
    print(accuracy_line("Top-5", sum(c["top5"] for c in cases), steps))
    print("YT_METRICS=" + metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())

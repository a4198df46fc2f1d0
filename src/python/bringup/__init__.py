"""bringup: language models on a compute device, proven against Hugging Face.

The engine is C++ (the ``_bringup`` extension); this package mirrors its API:

    import bringup
    llm = bringup.load("models/bringup/tiny-shakespeare-qwen2", precision="bf16")
    print(llm.generate("ROMEO:", max_new_tokens=40, seed=7))

Lower down: ``Checkpoint.open`` / ``Device`` / ``build_model`` give a ``Model`` whose sequences are
prefilled, decoded and batched (``Model.forward``) directly; ``bringup.hf.build_model`` wraps a
model for Hugging Face ``generate()``; ``bringup.batch.Generator`` is a batch API for serving
frameworks; ``python3 -m bringup.eval`` is the eval harness. Engine errors raise ``bringup.Error``
(a ``ValueError``) with the engine's one-line message.
"""

import json as _json
import os as _os

from ._bringup import (  # noqa: F401  (the public API)
    Checkpoint,
    Device,
    Error,
    Model,
    Sequence,
    TextStream,
    Tokenizer,
    build_model,
)

__all__ = [
    "Checkpoint", "Device", "Error", "Model", "Sequence", "TextStream", "Tokenizer", "build_model",
    "LLM", "load", "evaluate", "compare",
]


def evaluate(model, reference, prefill_decode=False, model_name=""):
    """Teacher-forces `model` through a bringup-reference/1 file and returns the metrics dict
    that ``bringup eval`` prints as YT_METRICS (top1, top5, max_abs_logit_err, KL statistics
    where the reference has full logits, ...)."""
    metrics, _ = model.evaluate(reference_file=_os.fspath(reference),
                                prefill_decode=prefill_decode, model_name=model_name)
    return _json.loads(metrics)


def compare(model, reference=None, prompt=None, checkpoint=None, pcc=0.99, model_name=""):
    """The per-layer table of ``bringup compare``: the residual stream after each block against
    the hidden states of a reference file, or the fp32 path of `checkpoint` on `prompt`. Returns
    {"rows": [{"block", "pcc", "max_abs_err"}, ...], "first_divergence": ..., ...}."""
    out = model.compare(reference_file=_os.fspath(reference) if reference else "",
                        prompt=prompt, checkpoint=checkpoint, pcc=pcc, model_name=model_name)
    return _json.loads(out)


class LLM:
    """A checkpoint directory or GGUF file loaded for generation: its model on a CPU device and
    its tokenizer (when it has one). precision "" is the model's default: native for a GGUF file
    (each matrix in its own format), bfp8-mixed for a directory."""

    def __init__(self, model_dir, precision="", threads=0, **options):
        self.checkpoint = Checkpoint.open(_os.fspath(model_dir))
        self.device = Device(threads)
        self.model = build_model(self.checkpoint, self.device, precision=precision, **options)
        self.tokenizer = Tokenizer.load_if_present(_os.fspath(model_dir))

    def _ids(self, prompt):
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise Error("prompt: this checkpoint has no tokenizer.json; give token ids")
            return self.tokenizer.encode(prompt)
        return prompt

    def stream(self, prompt, **sampling):
        """An iterator of the reply's text pieces (ids as text without a tokenizer). Sampling
        keywords as ``bringup generate``'s flags: max_new_tokens, temperature, do_sample, top_k,
        top_p, min_p, repetition_penalty, frequency_penalty, presence_penalty, seed, stop,
        eos_token_ids; unset ones come from generation_config.json."""
        return self.model.generate_stream(self._ids(prompt), self.tokenizer, self.checkpoint,
                                          **sampling)

    def generate(self, prompt, **sampling):
        """The whole reply's text (see stream)."""
        s = self.stream(prompt, **sampling)
        for _ in s:
            pass
        return s.text if self.tokenizer is not None else s.ids

    def chat(self, messages, **sampling):
        """The assistant's reply to a conversation ([{"role", "content"}, ...]) rendered with the
        checkpoint's chat template."""
        if self.tokenizer is None:
            raise Error("chat: this checkpoint has no tokenizer.json")
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True)
        return self.generate(ids, **sampling)

    def evaluate(self, reference, prefill_decode=False):
        return evaluate(self.model, reference, prefill_decode, self.checkpoint.name)

    def compare(self, reference=None, prompt=None, pcc=0.99):
        return compare(self.model, reference, prompt, self.checkpoint, pcc, self.checkpoint.name)


def load(model_dir, precision="", threads=0, **options):
    """``LLM(model_dir, ...)``: options are build_model's (max_seq_len, kv_budget_tokens,
    max_sequences, kv_block_size, prefill_chunk, max_logit_rows)."""
    return LLM(model_dir, precision=precision, threads=threads, **options)

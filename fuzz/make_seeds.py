#!/usr/bin/python3
"""Writes the seed corpora in fuzz/corpus/ (run from the repo root after building bringup):

    /usr/bin/python3 fuzz/make_seeds.py build/bringup

Each corpus holds a few valid inputs of its format and a few near misses; the fuzzers mutate
from there."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "data")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    bringup = sys.argv[1]
    shutil.rmtree(CORPUS, ignore_errors=True)
    # safetensors: the tiny checkpoint fuzz_safetensors.cc expects, whole and cut short.
    tiny = {"model_type": "qwen2", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 16, "tie_word_embeddings": True}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "tiny.json"), "w") as f:
            json.dump(tiny, f)
        subprocess.run([bringup, "synth", "--config", os.path.join(tmp, "tiny.json"), "--shard-size", "0",
                        "--out", os.path.join(tmp, "ck")], check=True, stderr=subprocess.DEVNULL)
        blob = open(os.path.join(tmp, "ck", "model.safetensors"), "rb").read()
    put("safetensors", "tiny", blob)
    put("safetensors", "tiny-truncated", blob[: len(blob) // 2])
    put("safetensors", "header-only", blob[: 8 + int.from_bytes(blob[:8], "little")])
    golden = open(os.path.join(DATA, "golden", "qwen2-tied-hd64", "model.safetensors"), "rb").read()
    put("safetensors", "golden-header", golden[: 8 + int.from_bytes(golden[:8], "little")])

    # config.json NUL generation_config.json
    gens = [open(os.path.join(DATA, "configs", "qwen2-7b-instruct.generation_config.json")).read(),
            open(os.path.join(DATA, "golden", "qwen2-gqa7-small", "generation_config.json")).read()]
    configs = [open(os.path.join(DATA, "configs", "arcee-spark.config.json")).read(),
               open(os.path.join(DATA, "golden", "qwen2-tied-hd64", "config.json")).read(),
               json.dumps(tiny)]
    for i, (c, g) in enumerate(zip(configs, gens + gens)):
        put("config", f"config{i}", c + "\0" + g)
    put("config", "rope-scaling", json.dumps({**tiny, "rope_scaling": {"type": "yarn", "factor": 4}}))

    # tokenizer.json: Qwen2's pipeline with the byte alphabet and its first 300 merges.
    full = json.load(open(os.path.join(DATA, "tokenizer", "tokenizer.json")))
    merges = full["model"]["merges"][:300]
    keep = set()
    for a, b in merges:
        keep.update([a, b, a + b])
    vocab = {t: i for t, i in full["model"]["vocab"].items() if i < 256 or t in keep}
    small = dict(full)
    small["model"] = {**full["model"], "vocab": vocab, "merges": merges}
    config = open(os.path.join(DATA, "tokenizer", "tokenizer_config.json")).read()
    put("tokenizer_load", "qwen2-small", json.dumps(small, ensure_ascii=False) + "\0" + config)
    string_merges = dict(small)
    string_merges["model"] = {**small["model"], "merges": [" ".join(m) for m in merges]}
    put("tokenizer_load", "string-merges", json.dumps(string_merges, ensure_ascii=False))

    # text to encode
    for i, line in enumerate(open(os.path.join(DATA, "tokenizer", "cases.jsonl"))):
        put("tokenizer_encode", f"case{i:02d}", json.loads(line)["text"])

    # chat templates (rendered, and parsed only)
    for target in ("chat_template", "chat_template_parse"):
        for name in os.listdir(os.path.join(DATA, "chat_templates")):
            put(target, name, open(os.path.join(DATA, "chat_templates", name)).read())
        put(target, "small", "{% for m in messages %}{{ m.role | upper }}: {{ m['content'] | trim }}\n{% endfor %}")

    # reference files
    put("reference", "golden-tied", open(os.path.join(DATA, "golden", "qwen2-tied-hd64", "reference.json")).read())
    put("reference", "small", json.dumps({"format": "bringup-reference/1", "cases": [
        {"name": "a", "prompt_ids": [1, 2], "reference_ids": [3], "top5_ids": [[3, 4, 5, 6, 7]],
         "top5_logits": [[5.0, 4.0, 3.0, 2.0, 1.0]]}]}))

    # OpenAI request bodies: the first byte picks the endpoint ('c' chat, else completions)
    chat = lambda body: "c" + json.dumps(body)
    put("openai_request", "chat_basic", chat({
        "model": "fuzz", "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Hello"}],
        "max_tokens": 8, "temperature": 0}))
    put("openai_request", "chat_stream", chat({
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stream": True, "stream_options": {"include_usage": True}, "n": 2, "logprobs": True,
        "top_logprobs": 3, "stop": ["\n", "END"], "seed": 7}))
    put("openai_request", "chat_tools", chat({
        "messages": [{"role": "developer", "content": "x"}, {"role": "assistant", "content": None},
                     {"role": "user", "content": "y"}],
        "tools": [{"type": "function"}], "tool_choice": "auto", "response_format": {"type": "text"}}))
    put("openai_request", "completion_ids", "p" + json.dumps({
        "prompt": [1, 2, 3, 151643], "max_tokens": 4, "echo": True, "logprobs": 2,
        "frequency_penalty": 0.5, "presence_penalty": -1}))
    put("openai_request", "completion_text", "p" + json.dumps({
        "prompt": ["\u4f60\u597d, world"], "max_tokens": 16, "top_p": 0.9, "top_k": 40,
        "min_p": 0.1, "repetition_penalty": 1.1}))


if __name__ == "__main__":
    main()

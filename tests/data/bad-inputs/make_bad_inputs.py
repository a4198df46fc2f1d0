#!/usr/bin/python3
"""Writes the catalogue of malformed inputs (one file per problem, named after it) and
manifest.json, which says how the CLI is pointed at each file and what its one-line error must
name. Run from anywhere: /usr/bin/python3 tests/data/bad-inputs/make_bad_inputs.py

Kinds (the test, tests/cli/bad_input_catalogue_test.cpp, sets each up):
  safetensors        model.safetensors of the tiny checkpoint in base/
  config             config.json of that checkpoint
  generation_config  generation_config.json of that checkpoint
  index              model.safetensors.index.json beside base/shards/
  tokenizer          tokenizer.json
  tokenizer_config   tokenizer_config.json beside base/tokenizer.json (run with --chat)
  reference          a reference file for the tiny checkpoint
  npy                the logits_npy of an otherwise valid reference
  prompt             a --prompt-file
  ids                stdin of detokenize --jsonl
"""

import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)
TINY = {"model_type": "qwen2", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 16, "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


def tiny_tensors():
    h, i, v, q, kv = 4, 4, 8, 4, 2
    t = [("model.embed_tokens.weight", [v, h]), ("model.norm.weight", [h])]
    p = "model.layers.0."
    t += [(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
          (p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.q_proj.bias", [q]),
          (p + "self_attn.k_proj.weight", [kv, h]), (p + "self_attn.k_proj.bias", [kv]),
          (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.v_proj.bias", [kv]),
          (p + "self_attn.o_proj.weight", [h, q]), (p + "mlp.gate_proj.weight", [i, h]),
          (p + "mlp.up_proj.weight", [i, h]), (p + "mlp.down_proj.weight", [h, i])]
    return t


def safetensors(tensors, edit=None, raw_header=None, data_extra=b""):
    header, offset, data = {}, 0, b""
    for k, (name, shape) in enumerate(tensors):
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        data += bytes([(k * 7 + j) % 64 for j in range(n)])  # small bf16 values
        offset += n
    if edit:
        edit(header)
    text = raw_header if raw_header is not None else json.dumps(header)
    return struct.pack("<Q", len(text)) + text.encode() + data + data_extra


def main():
    for d in os.listdir(HERE):
        if os.path.isdir(os.path.join(HERE, d)):
            shutil.rmtree(os.path.join(HERE, d))
    manifest = []

    def put(kind, name, data, expect):
        os.makedirs(os.path.join(HERE, kind), exist_ok=True)
        with open(os.path.join(HERE, kind, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        manifest.append({"kind": kind, "file": f"{kind}/{name}", "expect": expect})

    # The valid base: a tiny checkpoint (whole and in two shards) and a small tokenizer.
    base = os.path.join(HERE, "base")
    os.makedirs(os.path.join(base, "shards"))
    tensors = tiny_tensors()
    with open(os.path.join(base, "model.safetensors"), "wb") as f:
        f.write(safetensors(tensors))
    with open(os.path.join(base, "config.json"), "w") as f:
        json.dump(TINY, f, indent=1)
    with open(os.path.join(base, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": 7, "do_sample": False}, f)
    with open(os.path.join(base, "shards", "part-1.safetensors"), "wb") as f:
        f.write(safetensors(tensors[:8]))
    with open(os.path.join(base, "shards", "part-2.safetensors"), "wb") as f:
        f.write(safetensors(tensors[8:]))
    full = json.load(open(os.path.join(DATA, "tokenizer", "tokenizer.json")))
    merges = full["model"]["merges"][:50]
    keep = {x for a, b in merges for x in (a, b, a + b)}
    small = dict(full)
    small["model"] = {**full["model"], "vocab": {t: i for t, i in full["model"]["vocab"].items()
                                                 if i < 256 or t in keep}, "merges": merges}
    with open(os.path.join(base, "tokenizer.json"), "w") as f:
        json.dump(small, f, ensure_ascii=False)
    tok_config = json.load(open(os.path.join(DATA, "tokenizer", "tokenizer_config.json")))

    def tensor_edit(fn):
        return lambda h: fn(h)

    st = "safetensors"
    put(st, "empty-file.safetensors", b"", "truncated safetensors file")
    put(st, "header-length-past-end.safetensors", struct.pack("<Q", 1 << 20) + b"{}", "truncated safetensors file")
    put(st, "header-length-over-100MiB.safetensors", struct.pack("<Q", 1 << 40) + b"{}", "exceeds the 100 MiB limit")
    put(st, "header-not-json.safetensors", safetensors(tensors, raw_header="{not json"), "malformed JSON")
    put(st, "header-not-an-object.safetensors", safetensors(tensors, raw_header="[1, 2]"), "not a JSON object")
    put(st, "dtype-F64-unsupported.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(dtype="F64"))), "unsupported dtype 'F64'")
    put(st, "dtype-not-a-string.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(dtype=3))), "field 'dtype' must be a string")
    put(st, "shape-negative.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(shape=[-4]))), "field 'shape' must hold non-negative integers")
    put(st, "shape-not-an-array.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(shape="4"))), "field 'shape' must be an array")
    put(st, "offsets-end-before-begin.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(
            data_offsets=h["model.norm.weight"]["data_offsets"][::-1]))), "end before they begin")
    put(st, "offsets-past-end-of-file.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(data_offsets=[10 ** 9, 10 ** 9 + 8]))),
        "data_offsets [1000000000, 1000000008] point past the end")
    put(st, "offsets-overlapping.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.layers.0.post_attention_layernorm.weight"].update(
            data_offsets=h["model.layers.0.input_layernorm.weight"]["data_offsets"]))), "overlap")
    put(st, "bytes-disagree-with-shape.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h["model.norm.weight"].update(shape=[3]))), "holds 8 bytes but its shape and BF16 need 6")
    put(st, "tensor-missing.safetensors", safetensors(tensors[:-1]), "missing tensor 'model.layers.0.mlp.down_proj.weight'")
    put(st, "tensor-wrong-shape.safetensors",
        safetensors([(n, s[::-1]) if n.endswith("k_proj.weight") else (n, s) for n, s in tensors]), "has shape [4, 2]")
    put(st, "data-truncated.safetensors", safetensors(tensors)[:-10], "point past the end of the 286-byte data section")
    put(st, "tensor-entry-not-an-object.safetensors",
        safetensors(tensors, tensor_edit(lambda h: h.update({"model.norm.weight": 5}))), "is not an object")

    cf = "config"
    put(cf, "not-json.json", '{"model_type": "qwen2",', "malformed JSON")
    put(cf, "model-type-gemma2.json", json.dumps({**TINY, "model_type": "gemma2"}),
        "'model_type' is 'gemma2', which is not supported")
    put(cf, "hidden-act-gelu.json", json.dumps({**TINY, "hidden_act": "gelu"}), "field 'hidden_act' is 'gelu'; only 'silu' is supported")
    put(cf, "rope-scaling-longrope.json", json.dumps({**TINY, "rope_scaling": {"type": "longrope", "factor": 4.0}}), "field 'rope_scaling.type' is 'longrope'; supported")
    put(cf, "rope-scaling-yarn-mscale.json", json.dumps({**TINY, "rope_scaling": {"type": "yarn", "factor": 4.0, "mscale": 0.707}}), "field 'rope_scaling.mscale' is not supported for rope type 'yarn'")
    put(cf, "rope-scaling-no-factor.json", json.dumps({**TINY, "rope_scaling": {"rope_type": "linear"}}), "field 'rope_scaling.factor' is required for rope type 'linear'")
    put(cf, "sliding-window-negative.json", json.dumps({**TINY, "sliding_window": -5}), "field 'sliding_window' must be positive or null")
    put(cf, "sliding-window-enabled.json", json.dumps({**TINY, "use_sliding_window": True}), "field 'use_sliding_window' is true")
    put(cf, "kv-heads-do-not-divide-heads.json", json.dumps({**TINY, "num_key_value_heads": 3, "num_attention_heads": 4}),
        "field 'num_key_value_heads' (3) must divide num_attention_heads (4)")
    put(cf, "hidden-size-missing.json", json.dumps({k: v for k, v in TINY.items() if k != "hidden_size"}), "field 'hidden_size' is missing")
    put(cf, "vocab-size-a-string.json", json.dumps({**TINY, "vocab_size": "8"}), "field 'vocab_size' must be an integer, found a string")
    put(cf, "head-dim-odd.json", json.dumps({**TINY, "head_dim": 3}), "field 'head_dim' is 3; rotary embedding needs it even")
    put(cf, "layers-zero.json", json.dumps({**TINY, "num_hidden_layers": 0}), "field 'num_hidden_layers' is 0; expected 1..4096")
    put(cf, "vocab-size-a-billion.json", json.dumps({**TINY, "vocab_size": 10 ** 9}), "field 'vocab_size' is 1000000000; expected 1..16777216")
    put(cf, "top-level-an-array.json", "[1]", "expected a JSON object")

    gc = "generation_config"
    put(gc, "top-p-zero.json", json.dumps({"top_p": 0}), "field 'top_p' must be in (0, 1]")
    put(gc, "eos-id-a-string.json", json.dumps({"eos_token_id": ["<|im_end|>"]}), "field 'eos_token_id' must hold integers")
    put(gc, "temperature-negative.json", json.dumps({"temperature": -1}), "field 'temperature' must not be negative")

    ix = "index"
    wmap = {n: ("part-1.safetensors" if k < 8 else "part-2.safetensors") for k, (n, _) in enumerate(tensors)}
    put(ix, "weight-map-missing.json", json.dumps({"metadata": {}}), "field 'weight_map' is missing")
    put(ix, "shard-path-escapes-directory.json", json.dumps({"weight_map": {**wmap, "model.norm.weight": "../x.safetensors"}}),
        "plain file name")
    put(ix, "shard-file-absent.json", json.dumps({"weight_map": {**wmap, "model.norm.weight": "part-9.safetensors"}}),
        "part-9.safetensors: cannot open")
    put(ix, "tensor-in-wrong-shard.json", json.dumps({"weight_map": {**wmap, "model.norm.weight": "part-2.safetensors"}}),
        "is not in this file")

    tk = "tokenizer"
    put(tk, "not-json.json", '{"model": {', "malformed JSON")
    put(tk, "model-type-unigram.json", json.dumps({**small, "model": {**small["model"], "type": "Unigram"}}), "only BPE")
    put(tk, "merge-of-unknown-token.json",
        json.dumps({**small, "model": {**small["model"], "merges": merges + [["zzz", "qqq"]]}}, ensure_ascii=False), "merge 50 ('zzz', 'qqq') uses a token that is not in the vocabulary")
    put(tk, "vocab-missing-byte-tokens.json",
        json.dumps({**small, "model": {**small["model"], "vocab": {"a": 0}, "merges": []}}), "byte-level token")
    bad_regex = json.loads(json.dumps(small))
    bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"
    put(tk, "pre-tokenizer-regex-does-not-compile.json", json.dumps(bad_regex, ensure_ascii=False), "does not compile")
    wrapping_id = json.loads(json.dumps(small))
    wrapping_id["added_tokens"][0]["id"] = 2**32 + 5  # must not wrap to id 5
    put(tk, "added-token-id-past-int32.json", json.dumps(wrapping_id, ensure_ascii=False), "4294967301")
    nested = json.loads(json.dumps(small))
    nested["normalizer"] = json.loads('{"type": "Sequence", "normalizers": [' * 200 + '{"type": "NFC"}' + ']}' * 200)
    put(tk, "normalizer-sequence-nested-200-deep.json", json.dumps(nested, ensure_ascii=False), "levels deep")
    put(tk, "normalizer-nfkc-unsupported.json", json.dumps({**small, "normalizer": {"type": "NFKC"}}, ensure_ascii=False),
        "only NFC")

    tc = "tokenizer_config"
    put(tc, "chat-template-uses-macro.json", json.dumps({**tok_config, "chat_template": "{% macro m() %}{% endmacro %}"}),
        "unsupported construct 'macro'")
    put(tc, "chat-template-unclosed-tag.json", json.dumps({**tok_config, "chat_template": "{{ messages"}), "unclosed '{{'")
    put(tc, "chat-template-not-a-string.json", json.dumps({**tok_config, "chat_template": 42}), "field 'chat_template' must be a string")
    put(tc, "chat-template-unknown-filter.json",
        json.dumps({**tok_config, "chat_template": "{{ messages | shuffle }}"}), "filter 'shuffle'")

    rf = "reference"
    good = {"format": "bringup-reference/1", "cases": [
        {"name": "a", "prompt_ids": [1, 2, 3], "reference_ids": [4, 5], "top5_ids": [[4, 1, 2, 3, 0], [5, 1, 2, 3, 0]],
         "top5_logits": [[5, 4, 3, 2, 1], [5, 4, 3, 2, 1]]}]}
    case = good["cases"][0]
    put(rf, "not-json.json", '{"format": ', "malformed JSON")
    put(rf, "format-not-bringup-reference-1.json", json.dumps({**good, "format": "other/2"}), "bringup-reference/1")
    put(rf, "cases-empty.json", json.dumps({**good, "cases": []}), "field 'cases' must be a non-empty array")
    put(rf, "top5-row-too-short.json", json.dumps({**good, "cases": [{**case, "top5_ids": [[4, 1], [5, 1, 2, 3, 0]]}]}),
        "field 'top5_ids' rows must hold exactly 5 values")
    put(rf, "top5-rows-fewer-than-steps.json", json.dumps({**good, "cases": [{**case, "top5_logits": [[1, 2, 3, 4, 5]]}]}),
        "field 'top5_logits' must have one row per reference id")
    put(rf, "id-outside-vocabulary.json", json.dumps({**good, "cases": [{**case, "prompt_ids": [1, 2, 4096]}]}),
        "has token id 4096, outside the model's vocabulary of 8")
    put(rf, "negative-prompt-id.json", json.dumps({**good, "cases": [{**case, "prompt_ids": [-1]}]}), "field 'prompt_ids' must hold non-negative integer token ids")
    put(rf, "logits-npy-path-escapes.json", json.dumps({**good, "cases": [{**case, "logits_npy": "../../x.npy"}]}),
        "plain file names")

    nz = "npy"
    put(nz, "not-an-npy-file.npy", b"hello", "not a .npy file")
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 8), }"
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    put(nz, "float64-not-float32.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(128),
        "float32")
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8), }"
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    put(nz, "shape-not-steps-by-vocab.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(96),
        "expected logits of shape")
    put(nz, "data-truncated.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(10),
        "truncated")

    pr = "prompt"
    put(pr, "invalid-utf8-latin1-byte.txt", b"caf\xe9", "not valid UTF-8")
    put(pr, "invalid-utf8-overlong-slash.txt", b"a\xc0\xafb", "not valid UTF-8")
    put(pr, "invalid-utf8-surrogate.txt", b"\xed\xa0\x80", "not valid UTF-8")

    ids = "ids"
    put(ids, "id-outside-vocabulary.jsonl", "[1, 2]\n[999999]\n", "outside the tokenizer's vocabulary")
    put(ids, "line-not-an-array.jsonl", '"hello"\n', "expected a JSON array")
    put(ids, "id-not-an-integer.jsonl", "[1.5]\n", "integer token ids")

    # A valid twin of each kind's file, so that every refusal is due to its one defect.
    twins = {
        "shards/model.safetensors.index.json": json.dumps({"weight_map": wmap}),
        "tokenizer_config.json": json.dumps(
            {**tok_config, "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}),
        "reference.json": json.dumps(good),
        "prompt.txt": "!#%",  # ids below the tiny model's vocabulary of 8
        "ids.jsonl": "[1, 2]\n",
    }
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), }"
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    twins["logits.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(64)
    for name, data in twins.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} bad inputs")


if __name__ == "__main__":
    main()

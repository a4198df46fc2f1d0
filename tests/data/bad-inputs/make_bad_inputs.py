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
  gguf               a GGUF file given as --model (generate with prompt ids)
  gguf_tokenizer     a GGUF file given as --model to tokenize
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


# GGUF, written here by hand (independent of bringup's reader and of gguf-py): value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gguf_str(s):
    b = s if isinstance(s, bytes) else s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(t, v):
    if t == STR:
        return gguf_str(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, x) for x in items)
    return struct.pack("<" + {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f",
                              BOOL: "B", U64: "Q", I64: "q", F64: "d"}[t], v)


def gguf(kvs, tensors, version=3, alignment=32, tensor_count=None):
    """kvs: [(key, type, value)]; tensors: [(name, ne, ggml type, data bytes, offset or None)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if tensor_count is None else tensor_count,
                                len(kvs))
    for k, t, v in kvs:
        out += gguf_str(k) + struct.pack("<I", t) + gguf_value(t, v)
    data, offsets = b"", []
    for name, ne, ty, raw, off in tensors:
        if off is None:
            off = len(data)
            data += raw + bytes((-len(raw)) % alignment)
        offsets.append(off)
    for (name, ne, ty, raw, _), off in zip(tensors, offsets):
        out += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", ty, off)
    out += bytes((-len(out)) % alignment)
    return out + data


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
for _hf, _g in (("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
                ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
                ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")):
    for _s in ("weight", "bias"):
        GGUF_NAMES[f"model.layers.0.{_hf}.{_s}"] = f"blk.0.{_g}.{_s}"


def tiny_gguf_kvs():
    return [("general.architecture", STR, "qwen2"), ("qwen2.context_length", U32, 16),
            ("qwen2.embedding_length", U32, 4), ("qwen2.block_count", U32, 1),
            ("qwen2.feed_forward_length", U32, 4), ("qwen2.attention.head_count", U32, 2),
            ("qwen2.attention.head_count_kv", U32, 1),
            ("qwen2.attention.layer_norm_rms_epsilon", F32, 1e-6), ("qwen2.rope.freq_base", F32, 10000.0),
            ("tokenizer.ggml.eos_token_id", U32, 7)]


def tiny_gguf_tensors():
    out = []
    for k, (name, shape) in enumerate(tiny_tensors()):
        n = 1
        for d in shape:
            n *= d
        raw = b"".join(struct.pack("<e", ((k * 7 + j) % 64 - 32) / 64) for j in range(n))  # F16
        out.append((GGUF_NAMES[name], list(reversed(shape)), 1, raw, None))
    return out


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

    g = "gguf"
    kvs, tens = tiny_gguf_kvs(), tiny_gguf_tensors()
    put(g, "bad-magic.gguf", b"GGUX" + gguf(kvs, tens)[4:], "no such directory or GGUF file")
    put(g, "version-1.gguf", gguf(kvs, tens, version=1), "GGUF version 1 is not supported")
    put(g, "big-endian.gguf", gguf(kvs, tens, version=3 << 24), "big-endian GGUF files are not supported")
    put(g, "truncated-header.gguf", b"GGUF" + struct.pack("<I", 3) + b"\x01\x00", "truncated")
    put(g, "string-length-past-end.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40) + b"key" + bytes(16),
        "past the end of the file")
    put(g, "array-count-overflows.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_str("a") + struct.pack("<IIQ", ARR, U64, 1 << 61),
        "does not fit in the file")
    put(g, "tensor-count-too-large.gguf", gguf(kvs, tens, tensor_count=1 << 40), "tensor count")
    put(g, "nested-arrays-too-deep.gguf",
        gguf(kvs + [("deep", ARR, (ARR, [(ARR, [(ARR, [(ARR, [(U8, [1])])])])]))], tens), "nested deeper")
    put(g, "unknown-value-type.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_str("a") + struct.pack("<I", 13) + bytes(8),
        "unknown value type 13")
    put(g, "bool-not-0-or-1.gguf", gguf(kvs + [("flag", BOOL, 2)], tens), "is not 0 or 1")
    put(g, "duplicate-key.gguf", gguf(kvs + [kvs[1]], tens), "appears twice")
    put(g, "alignment-not-power-of-two.gguf", gguf(kvs + [("general.alignment", U32, 24)], tens),
        "general.alignment must be a power of two")
    t2 = list(tens)
    t2[0] = (t2[0][0], t2[0][1], t2[0][2], t2[0][3], 1 << 30)
    put(g, "tensor-data-out-of-bounds.gguf", gguf(kvs, t2), "runs past the end of the file")
    t2 = list(tens)
    t2[1] = (t2[1][0], t2[1][1], t2[1][2], t2[1][3], 0)
    t2[0] = (t2[0][0], t2[0][1], t2[0][2], t2[0][3], 0)
    put(g, "overlapping-tensors.gguf", gguf(kvs, t2), "overlap")
    t2 = list(tens)
    t2[0] = (t2[0][0], t2[0][1], 99, t2[0][3], None)
    put(g, "unknown-tensor-type.gguf", gguf(kvs, t2), "unknown type id 99")
    t2 = list(tens)
    t2[0] = (t2[0][0], t2[0][1], 10, t2[0][3], None)
    put(g, "unsupported-tensor-type-q2_k.gguf", gguf(kvs, t2), "has type Q2_K")
    t2 = list(tens)
    t2[0] = (t2[0][0], [1 << 33, 1 << 33], 1, t2[0][3], None)
    put(g, "dimensions-overflow.gguf", gguf(kvs, t2), "product overflows")
    t2 = list(tens)
    t2[0] = (t2[0][0], [4, 8, 1, 1, 1], 1, t2[0][3], None)
    put(g, "five-dimensions.gguf", gguf(kvs, t2), "5 dimensions")
    t2 = list(tens)
    t2[0] = (t2[0][0], t2[0][1], t2[0][2], t2[0][3], 0)
    t2[1] = (t2[1][0], t2[1][1], t2[1][2], t2[1][3], 96)
    t2[2] = (t2[2][0], t2[2][1], t2[2][2], t2[2][3], 100)
    put(g, "misaligned-offset.gguf", gguf(kvs, t2), "is not a multiple of the alignment")
    t2 = list(tens)
    t2[0] = (t2[0][0], t2[0][1], 8, bytes(34 * 2), None)  # Q8_0 rows of 4 elements
    put(g, "rows-not-whole-blocks.gguf", gguf(kvs, t2), "not whole Q8_0 blocks")
    t2 = list(tens)
    t2[1] = (t2[0][0], t2[1][1], t2[1][2], t2[1][3], None)
    put(g, "duplicate-tensor.gguf", gguf(kvs, t2), "appears twice")
    t2 = list(tens) + [("blk.0.mystery.weight", [4], 0, bytes(16), None)]
    put(g, "unknown-tensor-name.gguf", gguf(kvs, t2), "'blk.0.mystery.weight' is not one bringup knows")
    t2 = [t if t[0] != "blk.0.attn_q.weight" else (t[0], [4, 5], 1, bytes(2 * 20), None) for t in tens]
    put(g, "tensor-shape-disagrees-with-config.gguf", gguf(kvs, t2), "has shape [5, 4]")
    put(g, "missing-embedding-length.gguf", gguf([kv for kv in kvs if kv[0] != "qwen2.embedding_length"], tens),
        "missing metadata key 'qwen2.embedding_length'")
    put(g, "architecture-gpt2.gguf", gguf([("general.architecture", STR, "gpt2")] + kvs[1:], tens),
        "general.architecture is 'gpt2'")
    put(g, "rope-scaling-longrope.gguf", gguf(kvs + [("qwen2.rope.scaling.type", STR, "longrope")], tens),
        "qwen2.rope.scaling.type' is 'longrope'")
    put(g, "head-count-not-a-number.gguf",
        gguf([kv if kv[0] != "qwen2.attention.head_count" else (kv[0], STR, "two") for kv in kvs], tens),
        "'qwen2.attention.head_count' must be a number")

    # A GGUF tokenizer: the small base tokenizer as llama.cpp's convert writes one.
    # (the special tokens renumbered right after the others, keeping the file small)
    small_vocab = dict(small["model"]["vocab"])
    special = set()
    for t in small["added_tokens"]:
        special.add(max(small_vocab.values()) + 1)
        small_vocab[t["content"]] = max(small_vocab.values()) + 1
    n_tok = max(small_vocab.values()) + 1
    rev = {i: t for t, i in small_vocab.items()}
    toks = [rev.get(i, f"[PAD{i}]") for i in range(n_tok)]
    types = [5 if i not in rev else (3 if i in special else 1) for i in range(n_tok)]
    merge_strs = [m if isinstance(m, str) else " ".join(m) for m in merges]

    def tok_kvs(model="gpt2", pre="qwen2", tokens=None, token_types=None, extra=()):
        kv = [("general.architecture", STR, "qwen2"), ("tokenizer.ggml.model", STR, model),
              ("tokenizer.ggml.pre", STR, pre), ("tokenizer.ggml.tokens", ARR, (STR, tokens or toks)),
              ("tokenizer.ggml.token_type", ARR, (I32, token_types or types)),
              ("tokenizer.ggml.merges", ARR, (STR, merge_strs)),
              ("tokenizer.ggml.eos_token_id", U32, small_vocab["<|im_end|>"])]
        return kv + list(extra)

    gt = "gguf_tokenizer"
    put(gt, "tokenizer-model-llama.gguf", gguf(tok_kvs(model="llama"), []), "byte-level BPE ('gpt2')")
    put(gt, "pre-tokenizer-deepseek.gguf", gguf(tok_kvs(pre="deepseek-llm"), []),
        "tokenizer.ggml.pre is 'deepseek-llm'")
    put(gt, "adds-bos-without-bos-id.gguf",
        gguf(tok_kvs(extra=[("tokenizer.ggml.add_bos_token", BOOL, 1)]), []),
        "add_bos_token is true but tokenizer.ggml.bos_token_id is missing")
    put(gt, "token-types-count-differs.gguf", gguf(tok_kvs(token_types=types[:-1]), []),
        "entries for")
    put(gt, "token-invalid-utf8.gguf", gguf(tok_kvs(tokens=[b"\xff\xfe"] + toks[1:]), []), "not valid UTF-8")
    put(gt, "eos-outside-vocabulary.gguf",
        gguf([kv for kv in tok_kvs() if kv[0] != "tokenizer.ggml.eos_token_id"]
             + [("tokenizer.ggml.eos_token_id", U32, 1 << 20)], []), "not a token id")
    put(gt, "token-type-out-of-range.gguf", gguf(tok_kvs(token_types=[9] + types[1:]), []),
        "is 9 (expected 1 to 6)")

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
    twins["model.gguf"] = gguf(kvs, tens)
    twins["tokenizer.gguf"] = gguf(tok_kvs(), [])
    for name, data in twins.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} bad inputs")


if __name__ == "__main__":
    main()

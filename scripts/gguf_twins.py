#!/usr/bin/env python3
"""Writes GGUF twins of a Hugging Face checkpoint with gguf-py (llama.cpp's own writer and
quantizer, independent of bringup), following convert_hf_to_gguf.py's conventions: `<arch>.*`
hyperparameters, llama.cpp tensor names, 1-D tensors in F32, the q/k rows of `llama` models
permuted for llama.cpp's RoPE, no output.weight when embeddings are tied, and the tokenizer of
tokenizer.json when the checkpoint has one (tokens by id, added tokens CONTROL or USER_DEFINED,
missing ids [PADi] UNUSED). Types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (gguf-py cannot
quantize K-quants).

    python3 scripts/gguf_twins.py --llama-cpp DIR --model tests/data/golden/qwen2-gqa7-small \\
        --type q8_0 --out /tmp/qwen2-gqa7-small-q8_0.gguf
    python3 scripts/gguf_twins.py --llama-cpp DIR --tokenizer-only tests/data/tokenizer \\
        --arch qwen2 --out /tmp/qwen2-tokenizer.gguf
"""

import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(model_dir):
    out = {}
    files = [os.path.join(model_dir, "model.safetensors")]
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(files[0]):
        with open(index) as f:
            files = sorted({os.path.join(model_dir, v) for v in json.load(f)["weight_map"].values()})
    for path in files:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            base = 8 + n
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                f.seek(base + info["data_offsets"][0])
                raw = f.read(info["data_offsets"][1] - info["data_offsets"][0])
                if info["dtype"] == "F32":
                    a = np.frombuffer(raw, np.float32)
                elif info["dtype"] == "F16":
                    a = np.frombuffer(raw, np.float16).astype(np.float32)
                elif info["dtype"] == "BF16":
                    a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
                else:
                    sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}")
                out[name] = a.reshape(info["shape"])
    return out


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


LAYER = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
         "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.weight": "attn_k.weight",
         "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.weight": "attn_v.weight",
         "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
         "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
         "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}


def gguf_name(hf):
    if hf in TOP:
        return TOP[hf]
    parts = hf.split(".", 3)  # model, layers, N, rest
    return f"blk.{parts[2]}.{LAYER[parts[3]]}"


def add_tokenizer(w, tok_dir, vocab_size, pre, gguf, bos=None):
    with open(os.path.join(tok_dir, "tokenizer.json")) as f:
        tj = json.load(f)
    cfg = {}
    if os.path.exists(os.path.join(tok_dir, "tokenizer_config.json")):
        with open(os.path.join(tok_dir, "tokenizer_config.json")) as f:
            cfg = json.load(f)
    vocab = dict(tj["model"]["vocab"])
    added = {t["id"]: t for t in tj["added_tokens"]}
    for i, t in added.items():
        vocab[t["content"]] = i
    reverse = {i: t for t, i in vocab.items()}
    n = max(vocab_size or 0, max(reverse) + 1)
    tokens, types = [], []
    for i in range(n):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(reverse[i])
            special = added[i]["special"] or (reverse[i].startswith("<|") and reverse[i].endswith("|>"))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for field, adder in (("eos_token", w.add_eos_token_id), ("bos_token", w.add_bos_token_id)):
        name = cfg.get(field)
        if isinstance(name, dict):
            name = name.get("content")
        if name in vocab:
            adder(vocab[name])
    if cfg.get("pad_token") in vocab:
        w.add_pad_token_id(vocab[cfg["pad_token"]])
    if bos is not None:  # --add-bos: a BOS token that starts every prompt, as Llama 3's files have
        cfg["add_bos_token"] = True
        w.add_bos_token_id(vocab[bos])
    w.add_add_bos_token(bool(cfg.get("add_bos_token", False)))
    if cfg.get("chat_template"):
        w.add_chat_template(cfg["chat_template"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source (with gguf-py/)")
    ap.add_argument("--model", help="Hugging Face checkpoint directory")
    ap.add_argument("--tokenizer-only", help="a directory with tokenizer.json: metadata only, no tensors")
    ap.add_argument("--arch", default="qwen2", help="with --tokenizer-only")
    ap.add_argument("--add-bos", metavar="TOKEN",
                    help="with --tokenizer-only: add_bos_token true, TOKEN the BOS token")
    ap.add_argument("--type", default="f16", help="f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    import gguf
    from gguf import GGMLQuantizationType as T

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.tokenizer_only:
        w = gguf.GGUFWriter(args.out, args.arch)
        w.add_name(os.path.basename(os.path.normpath(args.tokenizer_only)))
        add_tokenizer(w, args.tokenizer_only, None, "qwen2" if args.arch == "qwen2" else "llama-bpe",
                      gguf, args.add_bos)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return

    qtype = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q4_0": T.Q4_0,
             "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1}[args.type]
    with open(os.path.join(args.model, "config.json")) as f:
        c = json.load(f)
    arch = c["model_type"]
    w = gguf.GGUFWriter(args.out, arch)
    w.add_name(os.path.basename(os.path.normpath(args.model)))
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c.get("num_key_value_heads", c["num_attention_heads"]))
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_rope_freq_base(c.get("rope_theta", 10000.0))
    if c.get("head_dim"):
        w.add_key_length(c["head_dim"])
        w.add_value_length(c["head_dim"])
    w.add_vocab_size(c["vocab_size"])
    w.add_file_type({T.F32: 0, T.F16: 1, T.BF16: 32, T.Q8_0: 7, T.Q4_0: 2, T.Q4_1: 3, T.Q5_0: 8,
                     T.Q5_1: 9}[qtype])
    if os.path.exists(os.path.join(args.model, "tokenizer.json")):
        add_tokenizer(w, args.model, c["vocab_size"], "qwen2" if arch == "qwen2" else "llama-bpe", gguf)
    else:
        with open(os.path.join(args.model, "generation_config.json")) as f:
            g = json.load(f)
        if "bos_token_id" in g:
            w.add_bos_token_id(g["bos_token_id"])
        eos = g.get("eos_token_id")
        if isinstance(eos, list):
            eos = eos[0]
        if eos is not None:
            w.add_eos_token_id(eos)

    tensors = read_safetensors(args.model)
    if c.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)
    heads, kv_heads = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    for name in sorted(tensors):
        a = tensors[name].astype(np.float32)
        if arch == "llama" and ("q_proj" in name or "k_proj" in name):
            a = permute(a, heads if "q_proj" in name else kv_heads)
        t = qtype if a.ndim == 2 else T.F32
        if t == T.F32:
            w.add_tensor(gguf_name(name), a)
        elif t == T.F16:
            w.add_tensor(gguf_name(name), a.astype(np.float16))
        else:
            data = gguf.quants.quantize(a, t)
            w.add_tensor(gguf_name(name), data, raw_shape=data.shape, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

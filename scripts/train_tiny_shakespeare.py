#!/usr/bin/python3
"""Train the small Qwen2 model that ships in the repo (models/bringup/tiny-shakespeare-qwen2).

Qwen2 architecture with Arcee-Spark's proportions where they matter to the engine: 7 query heads
over 1 KV head, q/k/v biases, RoPE theta 1e6, SwiGLU MLP, RMSNorm, and tied embeddings so the
bf16 checkpoint stays under ~50 MB with the full Qwen2 vocabulary (151936 rows). Trained on
tinyshakespeare (public domain) tokenized with the real Qwen2 tokenizer; the last 10% of the
tokens are held out.

Run with Debian's interpreter and PyTorch (apt-get install python3-torch python3-numpy):

    /usr/bin/python3 scripts/train_tiny_shakespeare.py \
        --ids ../shared/data/tinyshakespeare.qwen2-ids.u32le \
        --tokenizer-dir ../shared/golden/tokenizer-qwen2 \
        --out models/bringup/tiny-shakespeare-qwen2/checkpoint

Training the full 151936-row softmax on two CPU cores would take hours, so the script trains the
exact full-vocabulary model in a cheaper form: every token that never occurs in the training split
shares one learned embedding row u. The softmax over the full vocabulary then has only
(distinct training tokens + 1) different logits, the shared one counted N_unseen times, so the
loss computed over the compact vocabulary is exactly the full-vocabulary cross-entropy. The
exported checkpoint writes u into every unseen row, and all reported losses are measured on the
exported full-vocabulary model.

Deterministic for a given --seed and thread count. Not run by CI. Writes config.json,
generation_config.json, model.safetensors (bf16), the tokenizer files, training.json (losses,
baseline, settings) and reference.json: a bringup-reference/1 file computed by this script's own
PyTorch implementation in float32 on the saved bf16 weights, an independent check of the engine.
"""

import argparse
import json
import math
import os
import shutil
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

VOCAB = 151936  # Qwen2's padded vocabulary (151643 BPE tokens + 3 special + padding)
EOS = 151643


def config(args):
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "hidden_size": args.heads * args.head_dim,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "max_window_layers": args.layers,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "bos_token_id": EOS,
        "eos_token_id": EOS,
        "torch_dtype": "bfloat16",
    }


class Qwen2(torch.nn.Module):
    """Qwen2ForCausalLM's math (transformers' modeling_qwen2), written out."""

    def __init__(self, c, compact_vocab):
        """compact_vocab: the full-vocabulary ids that get rows of their own; every other id
        shares the last row."""
        super().__init__()
        self.c = c
        full_to_compact = torch.full((c["vocab_size"],), len(compact_vocab), dtype=torch.int64)
        full_to_compact[torch.as_tensor(compact_vocab)] = torch.arange(len(compact_vocab))
        self.register_buffer("full_to_compact", full_to_compact, persistent=False)
        self.compact_vocab = list(compact_vocab)
        # log of how many vocabulary rows the shared row stands for
        self.log_shared = math.log(c["vocab_size"] - len(compact_vocab))
        h, i = c["hidden_size"], c["intermediate_size"]
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = h // self.heads
        self.embed = torch.nn.Embedding(len(compact_vocab) + 1, h)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            layer = torch.nn.Module()
            layer.input_norm = torch.nn.Parameter(torch.ones(h))
            layer.q = torch.nn.Linear(h, self.heads * self.hd, bias=True)
            layer.k = torch.nn.Linear(h, self.kv_heads * self.hd, bias=True)
            layer.v = torch.nn.Linear(h, self.kv_heads * self.hd, bias=True)
            layer.o = torch.nn.Linear(self.heads * self.hd, h, bias=False)
            layer.post_norm = torch.nn.Parameter(torch.ones(h))
            layer.gate = torch.nn.Linear(h, i, bias=False)
            layer.up = torch.nn.Linear(h, i, bias=False)
            layer.down = torch.nn.Linear(i, h, bias=False)
            self.layers.append(layer)
        self.norm = torch.nn.Parameter(torch.ones(h))
        std = c["initializer_range"]
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=std)
        for layer in self.layers:
            for lin in (layer.q, layer.k, layer.v):
                torch.nn.init.zeros_(lin.bias)
            # Residual projections scaled down with depth, as in GPT-2.
            torch.nn.init.normal_(layer.o.weight, std=std / math.sqrt(2 * len(self.layers)))
            torch.nn.init.normal_(layer.down.weight, std=std / math.sqrt(2 * len(self.layers)))
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def rms(self, x, w):
        var = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(var + self.c["rms_norm_eps"]))

    def forward(self, ids):
        """Logits over the compact vocabulary (last column: all shared rows together)."""
        b, t = ids.shape
        x = self.embed(self.full_to_compact[ids])
        pos = torch.arange(t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()

        def rope(z):
            z1, z2 = z[..., : self.hd // 2], z[..., self.hd // 2:]
            return z * cos + torch.cat((-z2, z1), dim=-1) * sin

        group = self.heads // self.kv_heads
        for layer in self.layers:
            hcur = self.rms(x, layer.input_norm)
            q = layer.q(hcur).view(b, t, self.heads, self.hd).transpose(1, 2)
            k = layer.k(hcur).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
            v = layer.v(hcur).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            att = (q @ k.transpose(2, 3)) / math.sqrt(self.hd)
            att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
            att = torch.softmax(att, dim=-1, dtype=torch.float32)
            y = (att @ v).transpose(1, 2).reshape(b, t, self.heads * self.hd)
            x = x + layer.o(y)
            hcur = self.rms(x, layer.post_norm)
            x = x + layer.down(F.silu(layer.gate(hcur)) * layer.up(hcur))
        x = self.rms(x, self.norm)
        logits = x @ self.embed.weight.t()
        shared = torch.zeros(logits.shape[-1])
        shared[-1] = self.log_shared
        return logits + shared

    def loss(self, ids, targets, reduction="mean"):
        """Full-vocabulary cross-entropy of targets (full ids)."""
        logits = self(ids)
        compact = self.full_to_compact[targets]
        nll = F.cross_entropy(logits.view(-1, logits.shape[-1]), compact.view(-1), reduction="none")
        nll = nll + (compact.view(-1) == len(self.compact_vocab)).float() * self.log_shared
        return nll.mean() if reduction == "mean" else nll.sum()

    def full_logits(self, ids):
        """Logits over the full vocabulary, as the exported checkpoint computes them."""
        logits = self(ids)
        own, shared = logits[..., :-1], logits[..., -1:] - self.log_shared
        out = shared.expand(*own.shape[:-1], self.c["vocab_size"]).clone()
        out[..., torch.as_tensor(self.compact_vocab)] = own
        return out

    def full_embedding(self):
        """The [vocab, hidden] embedding of the exported checkpoint: row u for every unseen id."""
        return self.embed.weight[self.full_to_compact]

    def hf_state(self):
        """Tensors under Hugging Face Qwen2 names."""
        out = {"model.embed_tokens.weight": self.full_embedding(), "model.norm.weight": self.norm}
        for n, layer in enumerate(self.layers):
            p = f"model.layers.{n}."
            out[p + "input_layernorm.weight"] = layer.input_norm
            out[p + "post_attention_layernorm.weight"] = layer.post_norm
            for name, lin in (("q", layer.q), ("k", layer.k), ("v", layer.v)):
                out[p + f"self_attn.{name}_proj.weight"] = lin.weight
                out[p + f"self_attn.{name}_proj.bias"] = lin.bias
            out[p + "self_attn.o_proj.weight"] = layer.o.weight
            out[p + "mlp.gate_proj.weight"] = layer.gate.weight
            out[p + "mlp.up_proj.weight"] = layer.up.weight
            out[p + "mlp.down_proj.weight"] = layer.down.weight
        return out


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for raw in blobs:
            f.write(raw)


def byte_decoder():
    """GPT-2 / Qwen2 ByteLevel: the printable unicode character standing for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def detokenizer(tokenizer_dir):
    tok = json.load(open(os.path.join(tokenizer_dir, "tokenizer.json")))
    inv = {i: s for s, i in tok["model"]["vocab"].items()}
    for a in tok["added_tokens"]:
        inv[a["id"]] = a["content"]
    dec = byte_decoder()

    def decode(ids):
        out = bytearray()
        for i in ids:
            s = inv.get(int(i), "")
            if s.startswith("<|"):
                out += s.encode()
            else:
                out += bytes(dec[ch] for ch in s)
        return out.decode("utf-8", errors="replace")

    return decode


def evaluate(model, data, seq, batches, rng):
    model.eval()
    losses = []
    with torch.no_grad():
        for _ in range(batches):
            starts = rng.integers(0, len(data) - seq - 1, size=8)
            x = torch.stack([torch.from_numpy(data[s: s + seq].astype(np.int64)) for s in starts])
            y = torch.stack([torch.from_numpy(data[s + 1: s + seq + 1].astype(np.int64)) for s in starts])
            losses.append(model.loss(x, y).item())
    model.train()
    return float(np.mean(losses))


def full_pass_loss(model, data, seq):
    """Mean next-token loss over every token of data, in non-overlapping windows."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(data) - 1, seq):
            chunk = data[s: s + seq + 1].astype(np.int64)
            if len(chunk) < 2:
                break
            x = torch.from_numpy(chunk[:-1])[None]
            y = torch.from_numpy(chunk[1:])[None]
            total += model.loss(x, y, reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


def unigram_loss(train, held_out):
    """Held-out cross-entropy of the training unigram distribution, add-one smoothed over the
    tokenizer's 151646 tokens."""
    counts = np.bincount(train, minlength=VOCAB)[:151646].astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[held_out].mean())


def greedy_reference(model, prompt, n):
    """bringup-reference/1 case: greedy continuation with top-5 logits, float32, full recompute."""
    ids = list(prompt)
    case = {"prompt_ids": [int(i) for i in prompt], "reference_ids": [], "top5_ids": [], "top5_logits": []}
    with torch.no_grad():
        for _ in range(n):
            logits = model.full_logits(torch.tensor([ids]))[0, -1]
            top = torch.topk(logits, 5)
            case["top5_ids"].append([int(i) for i in top.indices])
            case["top5_logits"].append([float(v) for v in top.values])
            case["reference_ids"].append(int(top.indices[0]))
            ids.append(int(top.indices[0]))
    case["teacher_forced_argmax_matches"] = n
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", required=True, help="tinyshakespeare as little-endian uint32 Qwen2 ids")
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=7)
    ap.add_argument("--head-dim", type=int, default=20)
    ap.add_argument("--intermediate", type=int, default=448)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    data = np.fromfile(args.ids, dtype="<u4").astype(np.int64)
    split = int(len(data) * 0.9)
    train, held_out = data[:split], data[split:]
    c = config(args)
    model = Qwen2(c, np.unique(train).tolist())
    n_params = sum(p.numel() for p in model.parameters()) + (VOCAB - len(model.compact_vocab) - 1) * c["hidden_size"]
    print(f"{len(data)} tokens ({len(train)} train, {len(held_out)} held out), "
          f"{len(model.compact_vocab)} distinct training tokens; {n_params / 1e6:.2f}M parameters exported")

    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    log = []
    t0 = time.time()
    for step in range(args.steps):
        starts = rng.integers(0, len(train) - args.seq - 1, size=args.batch)
        x = torch.stack([torch.from_numpy(train[s: s + args.seq]) for s in starts])
        y = torch.stack([torch.from_numpy(train[s + 1: s + args.seq + 1]) for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            val = evaluate(model, held_out, args.seq, 4, np.random.default_rng(0))
            log.append({"step": step, "train_loss": loss.item(), "held_out_loss": val})
            print(f"step {step:5d}  loss {loss.item():.3f}  held-out {val:.3f}  {time.time() - t0:.0f}s", flush=True)

    # Round the weights to bf16 (what is saved), then measure everything on those.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    result = {
        "settings": vars(args),
        "parameters": n_params,
        "train_tokens": int(len(train)),
        "held_out_tokens": int(len(held_out)),
        "train_loss": full_pass_loss(model, train[:60000], 256),
        "held_out_loss": full_pass_loss(model, held_out, 256),
        "unigram_held_out_loss": unigram_loss(train, held_out),
        "log": log,
    }
    decode = detokenizer(args.tokenizer_dir)
    prompt = list(held_out[:24])
    sample = greedy_reference(model, prompt, 48)
    result["sample_prompt"] = decode(prompt)
    result["sample_greedy"] = decode(sample["reference_ids"])
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=1))

    os.makedirs(args.out, exist_ok=True)
    save_safetensors(model.hf_state(), os.path.join(args.out, "model.safetensors"))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": EOS, "eos_token_id": [EOS], "do_sample": True, "temperature": 0.8,
                   "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.0}, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer_dir, name), os.path.join(args.out, name))
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(result, f, indent=1)
    cases = [dict(greedy_reference(model, list(held_out[s: s + n]), 24), name=f"held-out-{s}")
             for s, n in ((0, 24), (5000, 100), (20000, 200))]
    ref = {"format": "bringup-reference/1", "model": "tiny-shakespeare-qwen2",
           "generator": "scripts/train_tiny_shakespeare.py PyTorch float32 on the saved bf16 weights, "
                        "greedy, full recompute per step",
           "cases": cases}
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()

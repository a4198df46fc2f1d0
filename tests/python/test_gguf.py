"""GGUF files made by llama.cpp's own Python package (gguf-py, from the llama.cpp source the npm
package node-llama-cpp ships; make deps unpacks it into tests/llama-cpp, and these tests skip
with a message without it): twins of the goldens in F16, BF16 and Q8_0 meet the golden
thresholds under the native policy (Q8_0 on its own kernel), the tokenizer a GGUF carries
encodes every shared case as tokenizer.json does, bringup's exporter writes the tensors gguf-py
writes, bit for bit, and its Q4_K and Q6_K files (which gguf-py cannot quantize) decode in
gguf-py to exactly the values bringup runs, and score in the order their bits imply."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import bringup
from common import DATA, SOURCE, cli, golden

LLAMA_CPP = os.environ.get("BRINGUP_LLAMA_CPP",
                           os.path.join(SOURCE, "tests", "llama-cpp", "llama.cpp"))
HAVE_GGUF_PY = os.path.isdir(os.path.join(LLAMA_CPP, "gguf-py", "gguf"))
needs_gguf_py = unittest.skipUnless(
    HAVE_GGUF_PY, f"gguf-py not found under {LLAMA_CPP} (make deps unpacks it from npm)")
GOLDENS = ["qwen2-gqa7-small", "llama-gqa4-small"]
THRESHOLDS = {"f16": (0.97, 0.99), "bf16": (0.97, 0.99), "q8_0": (0.90, 0.99)}


def twin(args, out):
    subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "gguf_twins.py"),
                    "--llama-cpp", LLAMA_CPP, *args, "--out", out], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": ""})


def evaluate(path, g):
    out, _ = cli("eval", "--model", path, "--reference", golden(f"{g}/reference.json"))
    return json.loads(out.split("YT_METRICS=")[1])


@needs_gguf_py
class GgufTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.twins = {}
        for g in GOLDENS:
            for t in THRESHOLDS:
                path = os.path.join(cls.tmp.name, f"{g}-{t}.gguf")
                twin(["--model", golden(g), "--type", t], path)
                cls.twins[(g, t)] = path

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_twins_meet_the_golden_thresholds(self):
        for (g, t), path in self.twins.items():
            with self.subTest(golden=g, type=t):
                # The default policy for a GGUF file: native (Q8_0 on its own kernel).
                m = evaluate(path, g)
                print(f"{g} {t}: top1 {m['top1']:.4f} top5 {m['top5']:.4f} "
                      f"KL {m.get('kl_mean', 0):.6f}", file=sys.stderr)
                self.assertEqual(m["precision"], "native")
                self.assertGreaterEqual(m["top1"], THRESHOLDS[t][0])
                self.assertGreaterEqual(m["top5"], THRESHOLDS[t][1])

    def test_k_quant_exports_decode_in_gguf_py_as_bringup_runs_them(self):
        sys.path.insert(0, os.path.join(LLAMA_CPP, "gguf-py"))
        sys.path.insert(0, os.path.join(SOURCE, "scripts"))
        from gguf import GGUFReader
        from gguf.quants import dequantize
        from gguf_twins import gguf_name, permute

        g = "llama-gqa4-small"  # hidden 512: whole Q4_K / Q6_K super-blocks
        kl = {}
        for t in ("q6_k", "q4_k"):
            with self.subTest(type=t):
                out = os.path.join(self.tmp.name, f"mine-{g}-{t}.gguf")
                cli("convert", "--model", golden(g), "--type", t, "--out", out)
                mine = bringup.Checkpoint.open(out)
                cfg = mine.config
                theirs = {x.name: x for x in GGUFReader(out).tensors}
                types = set()
                for name in mine.tensor_names:
                    x = theirs[gguf_name(name)]
                    types.add(x.tensor_type.name)
                    want = dequantize(x.data, x.tensor_type).reshape(mine.tensor(name).shape)
                    got = mine.tensor(name)
                    if name.endswith(("q_proj.weight", "k_proj.weight")):
                        heads = cfg["num_attention_heads"] if "q_proj" in name else \
                            cfg["num_key_value_heads"]
                        got = permute(got, heads)  # GGUF's row order for llama's RoPE
                    self.assertTrue(np.array_equal(want.astype(np.float32).view(np.uint32),
                                                   got.view(np.uint32)), name)
                self.assertIn(t.upper(), types)
                m = evaluate(out, g)
                kl[t] = m["kl_mean"]
                print(f"{g} {t} (bringup's quantizer): top1 {m['top1']:.4f} "
                      f"top5 {m['top5']:.4f} KL {kl[t]:.6f}", file=sys.stderr)
        kl["q8_0"] = evaluate(self.twins[(g, "q8_0")], g)["kl_mean"]
        self.assertLess(kl["q8_0"], kl["q6_k"])
        self.assertLess(kl["q6_k"], kl["q4_k"])

    def test_f16_twin_is_the_checkpoint_rounded_to_f16(self):
        for g in GOLDENS:
            with self.subTest(golden=g):
                ids = [3, 1, 4, 1, 5, 9, 2, 6]
                a = bringup.load(golden(g), precision="bf16", threads=2)
                b = bringup.load(self.twins[(g, "f16")], precision="bf16", threads=2)
                la = a.model.prefill(a.model.new_sequence(), ids)
                lb = b.model.prefill(b.model.new_sequence(), ids)
                self.assertLess(float(np.abs(la - lb).max()), 0.05)
                self.assertEqual(int(la.argmax()), int(lb.argmax()))

    def test_gguf_tokenizer_encodes_as_tokenizer_json(self):
        path = os.path.join(self.tmp.name, "qwen2-tokenizer.gguf")
        twin(["--tokenizer-only", os.path.join(DATA, "tokenizer"), "--arch", "qwen2"], path)
        mine = bringup.Tokenizer.load(path)
        ref = bringup.Tokenizer.load(os.path.join(DATA, "tokenizer"))
        with open(os.path.join(DATA, "tokenizer", "cases.jsonl")) as f:
            cases = [json.loads(line) for line in f if line.strip()]
        self.assertGreater(len(cases), 40)
        for c in cases:
            self.assertEqual(mine.encode(c["text"]), c["ids"], c["text"])
            self.assertEqual(mine.encode(c["text"]), ref.encode(c["text"]))
            self.assertEqual(mine.decode(c["ids"]), ref.decode(c["ids"]))
        self.assertEqual(mine.chat_template, ref.chat_template)
        self.assertEqual(mine.eos_token, ref.eos_token)

    def test_gguf_add_bos_token_starts_every_prompt(self):
        path = os.path.join(self.tmp.name, "qwen2-tokenizer-bos.gguf")
        twin(["--tokenizer-only", os.path.join(DATA, "tokenizer"), "--arch", "qwen2",
              "--add-bos", "<|endoftext|>"], path)
        mine = bringup.Tokenizer.load(path)
        ref = bringup.Tokenizer.load(os.path.join(DATA, "tokenizer"))
        self.assertTrue(mine.adds_bos)
        self.assertFalse(ref.adds_bos)
        text = "The quick brown fox"
        self.assertEqual(mine.encode(text, add_special_tokens=True),
                         [mine.token_id("<|endoftext|>")] + ref.encode(text))
        self.assertEqual(mine.encode(text), ref.encode(text))

    def test_export_writes_the_tensors_gguf_py_writes(self):
        sys.path.insert(0, os.path.join(LLAMA_CPP, "gguf-py"))
        from gguf import GGUFReader

        for g in GOLDENS:
            for t in ("bf16", "q8_0"):
                with self.subTest(golden=g, type=t):
                    out = os.path.join(self.tmp.name, f"mine-{g}-{t}.gguf")
                    cli("convert", "--model", golden(g), "--type", t, "--out", out)
                    mine = {x.name: x for x in GGUFReader(out).tensors}
                    theirs = {x.name: x for x in GGUFReader(self.twins[(g, t)]).tensors}
                    self.assertEqual(sorted(mine), sorted(theirs))
                    for name, x in theirs.items():
                        self.assertEqual(mine[name].tensor_type, x.tensor_type, name)
                        self.assertEqual(list(mine[name].shape), list(x.shape), name)
                        self.assertTrue(np.array_equal(np.asarray(mine[name].data).view(np.uint8),
                                                       np.asarray(x.data).view(np.uint8)), name)


if __name__ == "__main__":
    unittest.main()

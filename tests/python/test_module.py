"""The bringup module without transformers: its API against the C++ engine and the bringup
command (logits bit for bit, the streaming text, eval and compare), the HF adapter's forward and
cache, the batch API, and bad inputs raising bringup.Error with the engine's message."""

import json
import os
import tempfile
import unittest

import numpy as np
import torch

import bringup
import bringup.batch
import bringup.hf
from common import CLI, DATA, POLICIES, SHAKESPEARE, cli, golden, python_module

QWEN = golden("qwen2-gqa7-small")
TOKENIZER = os.path.join(DATA, "tokenizer")


class ModuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.device = bringup.Device(2)
        cls.checkpoint = bringup.Checkpoint.open(QWEN)
        cls.models = {p: bringup.build_model(cls.checkpoint, cls.device, 512, p) for p in POLICIES}

    def test_hf_forward_logits_equal_the_engine_bit_for_bit(self):
        ids = [3, 14, 15, 92, 65, 35, 89, 79]
        for p, model in self.models.items():
            with self.subTest(policy=p):
                seq = model.new_sequence()
                engine = model.prefill(seq, ids, all_positions=True)
                adapter = bringup.hf.BringupForCausalLM(model, self.checkpoint, None, None,
                                                        self.device)
                out = adapter(torch.tensor([ids]))
                self.assertIsInstance(out, bringup.hf.CausalLMOutputWithPast)
                self.assertEqual(tuple(out.logits.shape), (1, len(ids), model.vocab_size))
                self.assertTrue(np.array_equal(out.logits[0].numpy(), engine))

    def test_generated_ids_equal_the_bringup_command(self):
        for p, model in self.models.items():
            with self.subTest(policy=p):
                stream = model.generate_stream([1, 2, 3], None, self.checkpoint,
                                               max_new_tokens=12, temperature=0)
                pieces = list(stream)
                out, _ = cli("generate", "--model", QWEN, "--precision", p, "--prompt-ids",
                             "1,2,3", "--max-new-tokens", "12", "--temperature", "0")
                self.assertEqual(" ".join(pieces), out.strip())
                self.assertEqual(stream.ids, [int(t) for t in out.split()])

    def test_the_cache_advances_and_continues_like_one_forward(self):
        model = self.models["bf16"]
        adapter = bringup.hf.BringupForCausalLM(model, self.checkpoint, None, None, self.device)
        ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
        first = adapter(ids[:, :4])
        cache = first.past_key_values
        self.assertEqual(cache.get_seq_length(), 4)
        self.assertEqual(cache.sequences[0].length, 4)
        second = adapter(ids[:, 4:], past_key_values=cache, logits_to_keep=1)
        self.assertIs(second.past_key_values, cache)
        self.assertEqual(cache.sequences[0].length, 6)
        whole = adapter(ids).logits
        self.assertTrue(torch.equal(second.logits[0, -1], whole[0, -1]))

    def test_left_padded_rows_compute_what_they_compute_alone(self):
        model = self.models["bfp8-mixed"]
        adapter = bringup.hf.BringupForCausalLM(model, self.checkpoint, None, None, self.device)
        rows = [[7, 8, 9], [1, 2, 3, 4, 5, 6], [42]]
        width = max(map(len, rows))
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        batch = adapter(ids, attention_mask=mask).logits
        for i, r in enumerate(rows):
            alone = adapter(torch.tensor([r])).logits[0]
            self.assertTrue(torch.equal(batch[i, width - len(r):], alone))
            self.assertTrue(torch.all(batch[i, :width - len(r)] == 0))

    def test_the_stream_yields_the_text_of_bringup_generate(self):
        llm = bringup.load(SHAKESPEARE, precision="bf16", threads=2)
        for extra in ([], ["--temperature", "0.8", "--top-k", "40"]):
            with self.subTest(sampling=extra):
                kw = {"temperature": 0.8, "top_k": 40} if extra else {}
                pieces = list(llm.stream("ROMEO:", max_new_tokens=40, seed=7, **kw))
                out, _ = cli("generate", "--model", SHAKESPEARE, "--precision", "bf16",
                             "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "7", *extra)
                self.assertGreater(len(pieces), 1)
                self.assertEqual("".join(pieces) + "\n", out)
                self.assertEqual(llm.generate("ROMEO:", max_new_tokens=40, seed=7, **kw),
                                 "".join(pieces))

    def test_tokenizer_and_chat_template_match_the_bringup_command(self):
        tok = bringup.Tokenizer.load(TOKENIZER)
        text = "Hello, world! 你好 🌍"
        out, _ = cli("tokenize", "--model", TOKENIZER, text)
        ids = tok.encode(text)
        self.assertEqual(ids, [int(t) for t in out.split()])
        self.assertEqual(tok.decode(ids), text)
        prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}])
        self.assertIn("<|im_start|>user\nHi<|im_end|>", prompt)
        self.assertTrue(prompt.endswith("<|im_start|>assistant\n"))

    def test_batch_api_equals_each_sequence_alone(self):
        model = self.models["bf16"]
        gen = bringup.batch.Generator(model, max_batch=4)
        prompts = [[1, 2, 3, 4], [9, 8], [5, 5, 5]]
        tokens = np.zeros((3, 4), dtype=np.int64)
        for i, p in enumerate(prompts):
            tokens[i, :len(p)] = p
        lens = [len(p) for p in prompts]
        first = gen.prefill_forward(tokens, lens, user_ids=[2, 0, 1])
        nxt = first.argmax(axis=1)
        second = gen.decode_forward(nxt, lens, user_ids=[2, 0, 1])
        for i, p in enumerate(prompts):
            seq = model.new_sequence()
            self.assertTrue(np.array_equal(model.prefill(seq, p), first[i]))
            self.assertTrue(np.array_equal(model.decode(seq, int(nxt[i])), second[i]))
        self.assertEqual([len(t) for t in gen.page_table()], [1, 1, 1, 0])
        # Rolling back to the prompt's end and decoding again gives the same row.
        again = gen.decode_forward(nxt[:1], [lens[0]], user_ids=[2])
        self.assertTrue(np.array_equal(again[0], second[0]))

    def test_eval_equals_bringup_eval(self):
        ref = golden("qwen2-gqa7-small/reference.json")
        r = python_module("bringup.eval", "qwen2-gqa7-small", "--model", QWEN, "--precision",
                          "bfp8", "--reference", ref)
        self.assertEqual(r.returncode, 0, r.stderr)
        out, _ = cli("eval", "--model", QWEN, "--precision", "bfp8", "--reference", ref)
        mine = [line for line in r.stdout.splitlines() if "accuracy:" in line]
        theirs = [line for line in out.splitlines() if "accuracy:" in line]
        self.assertEqual(mine, theirs)
        metrics = json.loads(r.stdout.split("YT_METRICS=")[1])
        cli_metrics = json.loads(out.split("YT_METRICS=")[1])
        for k in ("top1", "top5", "total", "kl_mean", "max_abs_logit_err"):
            self.assertEqual(metrics[k], cli_metrics[k], k)
        api = bringup.evaluate(self.models["bfp8"], ref)
        self.assertEqual(api["top1"], cli_metrics["top1"])

    def test_a_bfp8_kv_cache_evaluates_as_bringup_eval_does(self):
        ref = golden("qwen2-gqa7-small/reference.json")
        r = python_module("bringup.eval", "qwen2-gqa7-small", "--model", QWEN, "--precision",
                          "bf16", "--kv-precision", "bfp8", "--reference", ref)
        self.assertEqual(r.returncode, 0, r.stderr)
        out, _ = cli("eval", "--model", QWEN, "--precision", "bf16", "--kv-precision", "bfp8",
                     "--reference", ref)
        metrics = json.loads(r.stdout.split("YT_METRICS=")[1])
        cli_metrics = json.loads(out.split("YT_METRICS=")[1])
        self.assertEqual(cli_metrics["kv_precision"], "bfp8")
        for k in ("top1", "top5", "kl_mean", "max_abs_logit_err"):
            self.assertEqual(metrics[k], cli_metrics[k], k)
        model = bringup.build_model(self.checkpoint, self.device, 512, "bf16", kv_precision="bfp8")
        self.assertEqual((model.kv_precision, self.models["bf16"].kv_precision), ("bfp8", "bf16"))
        # The cache is rounded to block float: logits move, a little, from the bf16 cache's.
        ids = list(range(3, 40))
        mine = model.prefill(model.new_sequence(), ids)
        bf16 = self.models["bf16"].prefill(self.models["bf16"].new_sequence(), ids)
        self.assertFalse(np.array_equal(mine, bf16))
        self.assertLess(float(np.abs(mine - bf16).max()), 0.5)
        with self.assertRaisesRegex(bringup.Error, "kv precision 'int8'"):
            bringup.build_model(self.checkpoint, self.device, 64, "bf16", kv_precision="int8")

    def test_weight_cache_is_written_then_read_with_the_same_logits(self):
        ids = list(range(3, 30))
        uncached = self.models["bfp8-mixed"]
        expected = uncached.prefill(uncached.new_sequence(), ids)
        self.assertEqual(uncached.weight_cache["state"], "off")
        with tempfile.TemporaryDirectory() as cache:
            states = []
            for mmap in (False, False, True):
                model = bringup.build_model(self.checkpoint, self.device, 512, "bfp8-mixed",
                                            weight_cache=cache, weight_cache_mmap=mmap)
                states.append((model.weight_cache["state"], model.weight_cache["mapped"]))
                self.assertTrue(model.weight_cache["file"].startswith(cache))
                self.assertGreater(model.weight_cache["bytes"], 0)
                self.assertTrue(np.array_equal(model.prefill(model.new_sequence(), ids), expected))
            self.assertEqual(states,
                             [("written", False), ("loaded", False), ("loaded", True)])

    def test_compare_returns_the_per_layer_table(self):
        ref = golden("qwen2-gqa7-small/reference.json")
        table = bringup.compare(self.models["bfp8-mixed"], reference=ref)
        out, _ = cli("compare", "--model", QWEN, "--precision", "bfp8-mixed", "--reference", ref,
                     "--json")
        theirs = json.loads(out)
        self.assertEqual([r["block"] for r in table["rows"]], [r["block"] for r in theirs["rows"]])
        for a, b in zip(table["rows"], theirs["rows"]):
            self.assertAlmostEqual(a["pcc"], b["pcc"], places=12)

    def test_bad_inputs_raise_the_engine_message(self):
        model = self.models["bf16"]
        seq = model.new_sequence()
        with self.assertRaises(bringup.Error) as e:
            model.prefill(seq, [1, 999999])
        _, err = cli("generate", "--model", QWEN, "--prompt-ids", "999999", check=False)
        self.assertIn(str(e.exception), err)
        self.assertIsInstance(e.exception, ValueError)
        self.assertEqual(seq.length, 0)  # nothing was computed
        with self.assertRaisesRegex(bringup.Error, "must be integers, got dtype float32"):
            model.prefill(seq, np.array([1.0, 2.0], dtype=np.float32))
        adapter = bringup.hf.BringupForCausalLM(model, self.checkpoint, None, None, self.device)
        with self.assertRaisesRegex(bringup.Error, "input_ids: expected integer token ids"):
            adapter(torch.tensor([[1.0, 2.0]]))
        with self.assertRaisesRegex(bringup.Error, "precision"):
            bringup.build_model(self.checkpoint, self.device, 64, "int3")
        with self.assertRaisesRegex(bringup.Error, "config.json"):
            bringup.Checkpoint.open(CLI)  # a file, not a checkpoint directory
        small = bringup.build_model(self.checkpoint, self.device, 64, "bf16", kv_budget_tokens=64)
        seqs = [small.new_sequence() for _ in range(4)]
        with self.assertRaisesRegex(bringup.Error, "kv cache is full"):
            small.forward(seqs, [[1] * 40] * 4)
        self.assertEqual([s.length for s in seqs], [0, 0, 0, 0])
        with self.assertRaisesRegex(bringup.Error, "hf_model: .* model_type 'gpt2'"):
            bringup.hf.build_model(_FakeHf("gpt2"), bringup.Device(1), 64)
        with self.assertRaisesRegex(bringup.Error, "unknown argument 'temprature'"):
            model.generate_stream([1], None, None, temprature=0.5)


class _FakeHf:
    """Just enough of a PreTrainedModel to be refused for its family."""

    def __init__(self, model_type):
        self.config = type("Config", (), {"model_type": model_type})()

    def state_dict(self):
        return {}


if __name__ == "__main__":
    unittest.main()

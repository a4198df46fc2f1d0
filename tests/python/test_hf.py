"""bringup.hf against the real Hugging Face library (the trimmed transformers 4.49 of
../shared/python): generate() on the goldens gives transformers' own tokens, teacher-forced logits
agree, padded batches, sampling, forks and beams behave, and python3 -m bringup.eval scores an
in-process HF reference as bringup eval scores the same reference from a file."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

import bringup
import bringup.hf
from common import SOURCE, cli, golden, needs_transformers, python_module

GOLDENS = ["qwen2-gqa7-small", "qwen2-tied-hd64", "llama-gqa4-small"]


def hf_model(name):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(golden(name), torch_dtype=torch.float32,
                                                attn_implementation="eager").eval()


def ones(ids):
    return torch.ones_like(ids)


@needs_transformers
class HfGenerateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hf = {n: hf_model(n) for n in GOLDENS}
        cls.ours = {n: bringup.hf.build_model(m, bringup.Device(2), 512, precision="fp32")
                    for n, m in cls.hf.items()}

    def prompt(self, name):
        with open(golden(f"{name}/reference.json")) as f:
            return json.load(f)["cases"][0]["prompt_ids"]

    def test_greedy_generate_gives_transformers_tokens(self):
        for name in GOLDENS:
            with self.subTest(golden=name):
                ids = torch.tensor([self.prompt(name)])
                kw = dict(max_new_tokens=32, do_sample=False, synced_gpus=False, pad_token_id=0,
                          attention_mask=ones(ids))
                theirs = self.hf[name].generate(ids, **kw)
                mine = self.ours[name].generate(ids, **kw)
                self.assertEqual(mine.tolist(), theirs.tolist())

    def test_teacher_forced_logits_agree(self):
        for name in GOLDENS:
            with self.subTest(golden=name):
                with open(golden(f"{name}/reference.json")) as f:
                    case = json.load(f)["cases"][0]
                ids = torch.tensor([case["prompt_ids"] + case["reference_ids"]])
                with torch.no_grad():
                    theirs = self.hf[name](ids).logits
                mine = self.ours[name](ids).logits
                self.assertLess(float((mine - theirs).abs().max()), 5e-3)

    def test_end_tokens_and_stopping_criteria_end_generation(self):
        from transformers import StoppingCriteria, StoppingCriteriaList

        name = "llama-gqa4-small"
        ids = torch.tensor([self.prompt(name)])
        kw = dict(attention_mask=ones(ids), do_sample=False, pad_token_id=0)
        full = self.ours[name].generate(ids, max_new_tokens=16, **kw)[0, ids.shape[1]:].tolist()
        end = full[5]
        stopped = self.ours[name].generate(ids, max_new_tokens=16, eos_token_id=end, **kw)
        self.assertEqual(stopped[0, ids.shape[1]:].tolist(), full[:full.index(end) + 1])

        class AfterThree(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), input_ids.shape[1] >= ids.shape[1] + 3)

        short = self.ours[name].generate(ids, max_new_tokens=16,
                                         stopping_criteria=StoppingCriteriaList([AfterThree()]),
                                         **kw)
        self.assertEqual(short[0, ids.shape[1]:].tolist(), full[:3])

    def test_the_model_from_a_path_equals_the_one_from_memory(self):
        name = "llama-gqa4-small"
        from_path = bringup.hf.build_model(golden(name), "cpu", 512, precision="bf16")
        from_memory = bringup.hf.build_model(self.hf[name], "cpu", 512, precision="bf16")
        ids = torch.tensor([self.prompt(name)])
        self.assertTrue(torch.equal(from_path(ids).logits, from_memory(ids).logits))
        self.assertEqual(from_path.config.model_type, "llama")

    def test_left_padded_batch_rows_get_what_they_get_alone(self):
        model = self.ours["qwen2-gqa7-small"]
        prompts = [[5, 6, 7], [9, 10, 11, 12, 13, 14, 15], [100], [4, 3, 2, 1, 7, 8]]
        kw = dict(max_new_tokens=16, do_sample=False, pad_token_id=0)
        alone = [model.generate(torch.tensor([p]), attention_mask=ones(torch.tensor([p])),
                                **kw)[0, len(p):].tolist() for p in prompts]
        width = max(map(len, prompts))
        ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        batch = model.generate(ids, attention_mask=mask, **kw)
        self.assertEqual([batch[i, width:].tolist() for i in range(4)], alone)

    def test_sampling_with_a_seed_is_reproducible(self):
        model = self.ours["llama-gqa4-small"]
        ids = torch.tensor([[5, 6, 7, 8], [1, 2, 3, 4]])
        kw = dict(attention_mask=ones(ids), max_new_tokens=16, do_sample=True, temperature=0.9,
                  top_k=50, top_p=0.95, pad_token_id=0)
        runs = []
        for seed in (11, 11, 12):
            torch.manual_seed(seed)
            runs.append(model.generate(ids, **kw).tolist())
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0], runs[2])

    def test_return_sequences_fork_the_prompt_and_beams_match_transformers(self):
        name = "qwen2-gqa7-small"
        model = self.ours[name]
        ids = torch.tensor([self.prompt(name)])
        kw = dict(attention_mask=ones(ids), max_new_tokens=8, do_sample=True,
                  num_return_sequences=3, pad_token_id=0)
        torch.manual_seed(5)
        three = model.generate(ids, **kw)
        torch.manual_seed(5)
        self.assertEqual(model.generate(ids, **kw).tolist(), three.tolist())
        self.assertEqual(tuple(three.shape), (3, ids.shape[1] + 8))
        self.assertTrue(torch.equal(three[:, :ids.shape[1]], ids.repeat(3, 1)))
        out = model(ids.repeat(3, 1))
        blocks = [s.block_table for s in out.past_key_values.sequences]
        self.assertEqual(blocks[0], blocks[1])  # forks share the prompt's blocks
        self.assertEqual(blocks[0], blocks[2])
        kw = dict(attention_mask=ones(ids), max_new_tokens=10, num_beams=3, do_sample=False,
                  pad_token_id=0, synced_gpus=False)
        self.assertEqual(model.generate(ids, **kw).tolist(),
                         self.hf[name].generate(ids, **kw).tolist())

    def test_bad_inputs(self):
        from transformers import MistralConfig, MistralForCausalLM

        tiny = MistralForCausalLM(MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                                num_hidden_layers=1, num_attention_heads=2,
                                                num_key_value_heads=1))
        with self.assertRaisesRegex(bringup.Error, "model_type 'mistral'; bringup runs qwen2 and llama"):
            bringup.hf.build_model(tiny, "cpu", 64)
        model = self.ours["llama-gqa4-small"]
        with self.assertRaisesRegex(bringup.Error, "outside the model's vocabulary"):
            model.generate(torch.tensor([[1, 10 ** 6]]), max_new_tokens=2, pad_token_id=0)
        small = bringup.hf.build_model(self.hf["llama-gqa4-small"], "cpu", 64, precision="bf16",
                                       kv_budget_tokens=64, kv_block_size=16)
        ids = torch.ones((4, 30), dtype=torch.long)
        with self.assertRaisesRegex(bringup.Error, "kv cache is full"):
            small.generate(ids, attention_mask=ones(ids), max_new_tokens=8, pad_token_id=0)
        with self.assertRaisesRegex(bringup.Error, "input_ids: expected integer token ids"):
            model(torch.tensor([[1.5, 2.0]]))


@needs_transformers
class HfEvalTest(unittest.TestCase):
    def test_python_eval_with_an_hf_reference_scores_as_bringup_eval(self):
        model = golden("llama-gqa4-small")
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = os.path.join(tmp, "ids.json")
            with open(ids_file, "w") as f:
                json.dump([3, 1, 4, 1, 5, 9, 2, 6], f)
            ref = os.path.join(tmp, "ref", "reference.json")
            subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "hf_reference.py"),
                            "--model", model, "--prompt-ids-file", ids_file, "--logits",
                            "--max-new-tokens", "24", "--out", ref], check=True,
                           capture_output=True)
            out, _ = cli("eval", "--model", model, "--precision", "bfp8", "--reference", ref)
        r = python_module("bringup.eval", "llama", "--model", model, "--precision", "bfp8",
                          "--hf-reference", "--prompt-ids", "3,1,4,1,5,9,2,6",
                          "--max-new-tokens", "24")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = lambda text: [l for l in text.splitlines() if "accuracy:" in l]  # noqa: E731
        self.assertEqual(lines(r.stdout), lines(out))
        mine = json.loads(r.stdout.split("YT_METRICS=")[1])
        theirs = json.loads(out.split("YT_METRICS=")[1])
        self.assertEqual(mine["model"], "llama")
        for k in ("top1", "top5", "total", "kl_steps"):
            self.assertEqual(mine[k], theirs[k], k)
        self.assertAlmostEqual(mine["kl_mean"], theirs["kl_mean"], places=6)


if __name__ == "__main__":
    unittest.main()

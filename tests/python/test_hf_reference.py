"""scripts/hf_reference.py against the real transformers: it reproduces every golden's
reference (ids equal, top-5 logits within 4e-5), names its cases and token counts per case,
creates the folder of --out, names the class it ran, and refuses a prompt without tokens before
any model work."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

from common import DATA, SOURCE, needs_transformers

SCRIPT = os.path.join(SOURCE, "scripts", "hf_reference.py")


def load_json(path):
    with open(path) as f:
        return json.load(f)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=900)


@needs_transformers
class HfReferenceTest(unittest.TestCase):
    def test_reproduces_every_golden_reference(self):
        goldens = sorted(glob.glob(os.path.join(DATA, "golden", "*", "reference.json")))
        self.assertGreaterEqual(len(goldens), 7)
        with tempfile.TemporaryDirectory() as tmp:
            for ref in goldens:
                name = os.path.basename(os.path.dirname(ref))
                with self.subTest(golden=name):
                    out = os.path.join(tmp, name, "new", "reference.json")  # folders to create
                    r = run("--model", os.path.dirname(ref), "--like", ref, "--out", out)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    want, got = load_json(ref), load_json(out)
                    arch = load_json(os.path.join(os.path.dirname(ref), "config.json"))
                    self.assertIn(arch["architectures"][0], got["generator"])
                    self.assertEqual([c["name"] for c in got["cases"]],
                                     [c["name"] for c in want["cases"]])
                    for a, b in zip(got["cases"], want["cases"]):
                        self.assertEqual(a["prompt_ids"], b["prompt_ids"])
                        self.assertEqual(a["reference_ids"], b["reference_ids"])
                        self.assertEqual(a["top5_ids"], b["top5_ids"])
                        err = max(abs(x - y) for ra, rb in zip(a["top5_logits"], b["top5_logits"])
                                  for x, y in zip(ra, rb))
                        self.assertLessEqual(err, 4e-5)

    def test_cases_are_named_and_sized_each_and_empty_prompts_refused(self):
        model = os.path.join(DATA, "golden", "llama-gqa4-small")
        with tempfile.TemporaryDirectory() as tmp:
            cases = os.path.join(tmp, "cases.json")
            with open(cases, "w") as f:
                json.dump([{"name": "a", "prompt_ids": [1, 2, 3], "max_new_tokens": 3},
                           {"name": "b", "prompt_ids": [4, 5], "max_new_tokens": 5}], f)
            out = os.path.join(tmp, "x", "y", "ref.json")
            r = run("--model", model, "--cases", cases, "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = load_json(out)
            self.assertEqual([(c["name"], len(c["reference_ids"])) for c in got["cases"]],
                             [("a", 3), ("b", 5)])
            self.assertIn("LlamaForCausalLM", got["generator"])
            with open(cases, "w") as f:
                json.dump([{"name": "empty", "prompt_ids": []}], f)
            r = run("--model", os.path.join(tmp, "no-such-model"), "--cases", cases, "--out", out)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("case empty: the prompt has no tokens", r.stderr)


if __name__ == "__main__":
    unittest.main()

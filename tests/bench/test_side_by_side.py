"""bench/llama_cpp_side_by_side.py end to end on a small synthetic checkpoint (a golden's shape,
Qwen2's vocabulary and tokenizer, as llama.cpp needs one), with a stand-in for
llama-bench (its arguments checked, its tok/s known) and the real bringup: the GGUF twins are
written, every run lands in the JSON, and the printed ratios are bringup's tok/s over the stand-in's.
Needs llama.cpp's gguf-py (tests/llama-cpp, unpacked by make deps) and numpy."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "llama_cpp_side_by_side.py")
GOLDEN_CONFIG = os.path.join(ROOT, "tests", "data", "golden", "qwen2-gqa7-small", "config.json")

# The stand-in's tok/s per twin: pp, tg.
FAKE_TS = {"q8_0": (100.0, 10.0), "bf16": (200.0, 5.0)}
FAKE = textwrap.dedent(f"""\
    #!/usr/bin/python3
    import json, os, sys
    a = sys.argv[1:]
    arg = lambda f: a[a.index(f) + 1]
    model = arg("-m")
    assert os.path.getsize(model) > 0 and open(model, "rb").read(4) == b"GGUF", model
    assert arg("-o") == "json" and arg("-t") == "2" and arg("-r") == "1", a
    pp, tg = {FAKE_TS!r}[model.rsplit("-", 1)[1].split(".")[0]]
    print(json.dumps([{{"n_prompt": int(arg("-p")), "n_gen": 0, "avg_ts": pp}},
                      {{"n_prompt": 0, "n_gen": int(arg("-n")), "avg_ts": tg}}]))
""")


@unittest.skipUnless(
    os.path.isdir(os.path.join(ROOT, "tests", "llama-cpp", "llama.cpp", "gguf-py")),
    "tests/llama-cpp (llama.cpp's gguf-py) is absent: make deps unpacks it")
class SideBySide(unittest.TestCase):
    def test_table_from_every_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            fake = os.path.join(tmp, "llama-bench")
            with open(fake, "w") as f:
                f.write(FAKE)
            os.chmod(fake, 0o755)
            model = os.path.join(tmp, "model")
            subprocess.run([os.environ["BRINGUP_CLI"], "synth", "--config", GOLDEN_CONFIG,
                            "--vocab", "151936", "--out", model], check=True, capture_output=True)
            for name in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copyfile(os.path.join(ROOT, "tests", "data", "tokenizer", name),
                                os.path.join(model, name))
            out_json = os.path.join(tmp, "runs.json")
            run = subprocess.run(
                [sys.executable, SCRIPT, "--bringup", os.environ["BRINGUP_CLI"], "--model", model,
                 "--cache", os.path.join(tmp, "cache"), "--llama-bench", fake, "--rounds", "2",
                 "--n-prompt", "16", "--n-gen", "4", "--json", out_json],
                capture_output=True, text=True, timeout=600)
            self.assertEqual(run.returncode, 0, run.stderr[-3000:])
            for t in ("q8_0", "bf16"):
                self.assertTrue(os.path.exists(os.path.join(tmp, "cache", f"model-{t}.gguf")))
            with open(out_json) as f:
                runs = {(r["engine"], r["type"]): r for r in json.load(f)["runs"]}
            self.assertEqual(set(runs), {("llama.cpp", "Q8_0"), ("llama.cpp", "BF16"),
                                         ("bringup", "bfp8"), ("bringup", "bfp8-mixed"),
                                         ("bringup", "bf16")})
            for key, r in runs.items():
                self.assertEqual(len(r["pp"]), 2, key)
                self.assertEqual(len(r["tg"]), 2, key)
                self.assertGreater(r["bytes"], 0, key)
            # Q8_0 and bfp8 carry about 8.5 bits a weight, BF16 and bf16 16.
            self.assertLess(runs[("llama.cpp", "Q8_0")]["bytes"], 0.6 * runs[("llama.cpp", "BF16")]["bytes"])
            self.assertLess(runs[("bringup", "bfp8")]["bytes"], 0.6 * runs[("bringup", "bf16")]["bytes"])
            # Each printed ratio is the median of bringup's rounds over the stand-in's tok/s.
            for policy, twin in (("bfp8", "q8_0"), ("bfp8-mixed", "q8_0"), ("bf16", "bf16")):
                r = runs[("bringup", policy)]
                tg = (r["tg"][0] + r["tg"][1]) / 2
                pp = (r["pp"][0] + r["pp"][1]) / 2
                line = re.search(rf"^\| {re.escape(policy)} \| (.*)$", run.stdout, re.M)
                self.assertIsNotNone(line, run.stdout)
                self.assertEqual(
                    line.group(1),
                    f"{tg / FAKE_TS[twin][1]:.2f}x {twin.upper()} | {pp / FAKE_TS['bf16'][0]:.2f}x | "
                    f"{pp / FAKE_TS['q8_0'][0]:.2f}x |")

    def test_bad_arguments_are_refused(self):
        def refused(model, message):
            run = subprocess.run([sys.executable, SCRIPT, "--bringup", os.environ["BRINGUP_CLI"],
                                  "--model", model, "--llama-bench", "/bin/true"],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn(message, run.stderr)

        refused("/nonexistent", "--model /nonexistent has no config.json")
        no_tokenizer = os.path.dirname(GOLDEN_CONFIG)
        refused(no_tokenizer, f"--model {no_tokenizer} has no tokenizer.json")


if __name__ == "__main__":
    unittest.main()

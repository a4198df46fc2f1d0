"""What the Python tests share: where the build, the test data and the CLI are (ctest sets
them), and whether the trimmed transformers of ../shared/python is importable."""

import os
import subprocess
import sys
import unittest

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("BRINGUP_TEST_DATA", os.path.join(SOURCE, "tests", "data"))
CLI = os.environ.get("BRINGUP_CLI", os.path.join(SOURCE, "build", "bringup"))
SHARED_PYTHON = os.path.join(os.path.dirname(SOURCE), "shared", "python")
SHAKESPEARE = os.path.join(SOURCE, "models", "bringup", "tiny-shakespeare-qwen2")
POLICIES = ["fp32", "bf16", "bfp8-mixed", "bfp8"]

try:
    import transformers  # noqa: F401

    HAVE_TRANSFORMERS = True
except ImportError:
    HAVE_TRANSFORMERS = False

needs_transformers = unittest.skipUnless(
    HAVE_TRANSFORMERS,
    "transformers is not importable: these tests need ../shared/python (absent in a fresh clone "
    "without it)")


def golden(name):
    return os.path.join(DATA, "golden", name)


def cli(*args, check=True):
    """Runs the bringup command; returns (stdout, stderr)."""
    # Under the sanitizer build python preloads the shared ASan runtime; the command links its own.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"bringup {' '.join(args)} failed: {r.stderr}")
    return r.stdout, r.stderr


def python_module(*args):
    """python3 -m with this test's interpreter and environment; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=600)

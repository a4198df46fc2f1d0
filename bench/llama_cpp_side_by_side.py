#!/usr/bin/python3
"""bringup and llama.cpp side by side, in one sitting, on one checkpoint.

Once, into a cache directory (default .bench-cache/, ignored by git): llama.cpp's source as the npm
package node-llama-cpp ships it (scripts/llama_cpp_source.sh, into tests/llama-cpp), `llama-bench` built from it
natively (GGML_NATIVE=ON, no server, examples or tests; about 15 minutes on 2 cores), a synthetic
checkpoint (`bringup synth --preset arcee-spark` unless --model names one) and its GGUF twins in
Q8_0 and BF16 (`bringup convert`; llama.cpp loading them is what the twins are for).

Then R rounds; in each, `llama-bench` on each twin and `bringup bench` under each precision policy
run one after another, each in its own session with the session group's priority raised, as
../shared/docs/machine.md asks for timings on this shared machine. One table follows: tok/s of
every run, weight bytes read per decoded token, the bytes streamed per second during decode, the
shares of the bandwidth and bf16 compute limits that bringup probed in the same sitting (the best
of all its probes, which read the way a fast GEMV does), and bringup's ratio to llama.cpp at
similar bytes per token (bfp8 and bfp8-mixed against Q8_0, bf16 against BF16).

    bench/llama_cpp_side_by_side.py                     # synthetic Arcee-Spark, 2 rounds
    bench/llama_cpp_side_by_side.py --model DIR --rounds 3 --threads 2

Needs root or CAP_SYS_NICE for the raised priority (it says so and runs at normal priority
otherwise). Prints ratios of runs made in the same sitting, never timings checked against a bar.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# bringup's policies and the llama.cpp twin each is compared with at similar bytes per token.
POLICIES = [("bfp8", "Q8_0"), ("bfp8-mixed", "Q8_0"), ("bf16", "BF16")]
TWINS = ["Q8_0", "BF16"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def priority_raised():
    """Whether this process may raise its session group's priority (see machine.md)."""
    try:
        probe = subprocess.run(
            ["setsid", "bash", "-c", "echo -20 > /proc/self/autogroup"], capture_output=True
        )
        return probe.returncode == 0
    except OSError:
        return False


def timed_session(cmd, raise_priority):
    """Runs cmd in a session of its own (its priority raised when allowed); returns stdout."""
    inner = " ".join(shlex.quote(c) for c in cmd)
    if raise_priority:
        inner = "echo -20 > /proc/self/autogroup; exec " + inner
    else:
        inner = "exec " + inner
    log("$ " + " ".join(cmd))
    out = subprocess.run(["setsid", "bash", "-c", inner], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {cmd[0]} exited with {out.returncode}:\n{out.stderr[-4000:]}")
    return out.stdout


def llama_bench_binary(cache, jobs, given):
    """llama-bench from node-llama-cpp's llama.cpp source (unpacked once into tests/llama-cpp, where
    `make deps` puts it for the GGUF tests), built once into the cache."""
    source = subprocess.run(
        [os.path.join(ROOT, "scripts", "llama_cpp_source.sh"), os.path.join(ROOT, "tests", "llama-cpp")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    if given:
        if not os.access(given, os.X_OK):
            sys.exit(f"error: --llama-bench {given} is not an executable file")
        return source, given
    build = os.path.join(cache, "llama-build")
    binary = os.path.join(build, "bin", "llama-bench")
    if not os.path.exists(binary):
        log("building llama-bench (once; about 15 minutes on 2 cores)")
        run(["cmake", "-S", source, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_SERVER=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DBUILD_SHARED_LIBS=OFF"],
            stdout=subprocess.DEVNULL)
        run(["cmake", "--build", build, "-j", str(jobs), "--target", "llama-bench"],
            stdout=subprocess.DEVNULL)
    return source, binary


def gguf_weight_bytes_per_token(source, path):
    """Bytes of every tensor a decoded token reads: all of them but the embedding table, whose one
    row per token is negligible (unless it is also the output matrix)."""
    sys.path.insert(0, os.path.join(source, "gguf-py"))
    from gguf import GGUFReader  # llama.cpp's own reader, pure Python

    tensors = GGUFReader(path).tensors
    names = {t.name for t in tensors}
    tied = "output.weight" not in names
    return sum(
        int(t.n_bytes) for t in tensors if t.name != "token_embd.weight" or tied
    )


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bringup", default=os.path.join(ROOT, "build", "bringup"),
                   help="the bringup binary (default: build/bringup)")
    p.add_argument("--cache", default=os.path.join(ROOT, ".bench-cache"),
                   help="where llama.cpp, its build, the checkpoint and the twins are kept")
    p.add_argument("--model", help="checkpoint directory (default: synthetic Arcee-Spark)")
    p.add_argument("--llama-bench", help="a llama-bench binary to use instead of building one")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--n-prompt", type=int, default=512)
    p.add_argument("--n-gen", type=int, default=64)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="build jobs")
    p.add_argument("--json", help="also write every run's numbers to this file")
    return p.parse_args()


def main():
    a = parse_args()
    if not os.path.exists(a.bringup):
        sys.exit(f"error: --bringup {a.bringup} does not exist (run make build first)")
    for name in ("rounds", "threads", "n_prompt", "n_gen"):
        if getattr(a, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 1")
    if a.model is not None:
        if not os.path.exists(os.path.join(a.model, "config.json")):
            sys.exit(f"error: --model {a.model} has no config.json")
        if not os.path.exists(os.path.join(a.model, "tokenizer.json")):
            sys.exit(f"error: --model {a.model} has no tokenizer.json, and llama.cpp loads no "
                     "GGUF file without a vocabulary")
    os.makedirs(a.cache, exist_ok=True)
    source, llama_bench = llama_bench_binary(a.cache, a.jobs, a.llama_bench)

    model = a.model
    if model is None:
        model = os.path.join(a.cache, "arcee-spark-synthetic")
        if not os.path.exists(os.path.join(model, "config.json")):
            run([a.bringup, "synth", "--preset", "arcee-spark", "--out", model])
        # Random weights, Arcee-Spark's own tokenizer (Qwen2's): llama.cpp loads no GGUF without
        # a vocabulary, and bringup bench feeds synthetic ids either way.
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(ROOT, "tests", "data", "tokenizer", name),
                            os.path.join(model, name))
    stem = os.path.basename(os.path.normpath(model))
    twins = {}
    for t in TWINS:
        twins[t] = os.path.join(a.cache, f"{stem}-{t.lower()}.gguf")
        # Written again when the checkpoint is newer than the twin.
        if not os.path.exists(twins[t]) or os.path.getmtime(twins[t]) < os.path.getmtime(
                os.path.join(model, "config.json")):
            tmp = twins[t] + ".tmp"
            run([a.bringup, "convert", "--model", model, "--type", t.lower(), "--out", tmp])
            os.replace(tmp, twins[t])
    bytes_per_token = {t: gguf_weight_bytes_per_token(source, twins[t]) for t in TWINS}

    raise_priority = priority_raised()
    if not raise_priority:
        log("note: cannot raise the session group's priority (needs root); timings will be noisier")

    # Every run's tok/s, in the order they ran: runs[key] = {"pp": [...], "tg": [...]}.
    runs = {}
    limits = []  # (bandwidth GB/s, compute GFLOP/s) of every bringup probe
    flops_per_prompt_token = 0.0  # the model's, whatever the engine or policy
    for r in range(a.rounds):
        log(f"round {r + 1} of {a.rounds}")
        for t in TWINS:
            out = timed_session(
                [llama_bench, "-m", twins[t], "-t", str(a.threads), "-p", str(a.n_prompt),
                 "-n", str(a.n_gen), "-r", "1", "-o", "json"],
                raise_priority,
            )
            row = runs.setdefault(("llama.cpp", t), {"pp": [], "tg": []})
            for test in json.loads(out):
                kind = "pp" if test["n_prompt"] > 0 else "tg"
                row[kind].append(test["avg_ts"])
        for policy, _ in POLICIES:
            out = timed_session(
                [a.bringup, "bench", "--model", model, "--precision", policy,
                 "--threads", str(a.threads), "-p", str(a.n_prompt), "-n", str(a.n_gen),
                 "-r", "1", "--weight-cache", "off", "--json"],
                raise_priority,
            )
            j = json.loads(out)
            row = runs.setdefault(("bringup", policy), {"pp": [], "tg": []})
            row["pp"].append(j["pp_tok_s"])
            row["tg"].append(j["tg_tok_s"])
            row["bytes"] = j["weight_bytes_per_token"] + j["kv_bytes_per_token"]
            limits.append((j["bandwidth_gb_s"], j["compute_gflop_s"]))
            flops_per_prompt_token = j["pp_gflop_per_token"] * 1e9

    bw = max(l[0] for l in limits)
    peak = max(l[1] for l in limits)
    for t in TWINS:
        runs[("llama.cpp", t)]["bytes"] = bytes_per_token[t]

    def med(key, kind):
        return statistics.median(runs[key][kind])

    def fmt(values):
        return ", ".join(f"{v:.2f}" for v in values)

    def span(values):
        lo, hi = min(values), max(values)
        return f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}"

    rounds = f"{a.rounds} round{'s' if a.rounds > 1 else ''}"
    print(f"\nbringup and llama.cpp, {a.threads} threads, {rounds}, one sitting; "
          f"limits probed by bringup in the same sitting: memory read {bw:.1f} GB/s, "
          f"bf16 multiply {peak:.0f} GFLOP/s\n")
    print(f"| | pp{a.n_prompt} tok/s | tg{a.n_gen} tok/s | bytes per token | streamed in decode "
          f"| tg % of bandwidth | pp % of compute |")
    print("|---|---|---|---|---|---|---|")
    order = [("llama.cpp", t) for t in TWINS] + [("bringup", p) for p, _ in POLICIES]
    for key in order:
        row = runs[key]
        tg = med(key, "tg")
        pp = med(key, "pp")
        gbs = [v * row["bytes"] / 1e9 for v in row["tg"]]
        print(f"| {key[0]} {key[1]} | {fmt(row['pp'])} | {fmt(row['tg'])} | "
              f"{row['bytes'] / 1e9:.2f} GB | {span(gbs)} GB/s | "
              f"{100 * tg * row['bytes'] / (bw * 1e9):.0f}% | "
              f"{100 * pp * flops_per_prompt_token / (peak * 1e9):.0f}% |")

    print("\nbringup / llama.cpp (medians of the rounds):\n")
    print("| bringup | decode | prefill vs BF16 | prefill vs Q8_0 |")
    print("|---|---|---|---|")
    for policy, twin in POLICIES:
        b = ("bringup", policy)
        print(f"| {policy} | {med(b, 'tg') / med(('llama.cpp', twin), 'tg'):.2f}x {twin} | "
              f"{med(b, 'pp') / med(('llama.cpp', 'BF16'), 'pp'):.2f}x | "
              f"{med(b, 'pp') / med(('llama.cpp', 'Q8_0'), 'pp'):.2f}x |")

    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "rounds": a.rounds, "bandwidth_gb_s": bw,
                       "compute_gflop_s": peak,
                       "runs": [{"engine": k[0], "type": k[1], **v} for k, v in runs.items()]},
                      f, indent=2)


if __name__ == "__main__":
    main()

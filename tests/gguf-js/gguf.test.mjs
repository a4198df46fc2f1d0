// bringup convert --to gguf, read back by an independent reader: Hugging Face's @huggingface/gguf
// (installed by make deps). Every file it writes parses, with the hyperparameters of the
// checkpoint's config.json, llama.cpp's tensor names, shapes in ggml order, the requested types,
// aligned offsets, and the tokenizer of tokenizer.json.
import { gguf } from "@huggingface/gguf";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cli = process.env.BRINGUP_CLI ?? join(root, "build", "bringup");
const TYPE_IDS = { f16: 1, bf16: 30, q8_0: 8, f32: 0 };

function convert(model, type, out) {
  execFileSync(cli, ["convert", "--model", model, "--to", "gguf", "--type", type, "--out", out],
               { stdio: "pipe" });
}

test("every golden, in every export type, parses with @huggingface/gguf", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "bringup-gguf-js-"));
  try {
    for (const name of ["qwen2-gqa7-small", "qwen2-tied-hd64", "llama-gqa4-small"]) {
      const dir = join(root, "tests", "data", "golden", name);
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      for (const type of ["f16", "bf16", "q8_0"]) {
        const out = join(tmp, `${name}-${type}.gguf`);
        convert(dir, type, out);
        const { metadata, tensorInfos } = await gguf(out, { allowLocalFile: true });
        const arch = config.model_type;
        assert.equal(metadata["general.architecture"], arch);
        assert.equal(metadata.version, 3);
        assert.equal(metadata[`${arch}.block_count`], config.num_hidden_layers);
        assert.equal(metadata[`${arch}.embedding_length`], config.hidden_size);
        assert.equal(metadata[`${arch}.feed_forward_length`], config.intermediate_size);
        assert.equal(metadata[`${arch}.attention.head_count`], config.num_attention_heads);
        assert.equal(metadata[`${arch}.attention.head_count_kv`], config.num_key_value_heads);
        const names = tensorInfos.map((t) => t.name);
        assert.ok(names.includes("token_embd.weight"));
        assert.ok(names.includes(`blk.${config.num_hidden_layers - 1}.ffn_down.weight`));
        assert.equal(names.includes("output.weight"), !config.tie_word_embeddings);
        const embd = tensorInfos.find((t) => t.name === "token_embd.weight");
        assert.deepEqual(embd.shape.map(Number), [config.hidden_size, config.vocab_size]);
        for (const t of tensorInfos) {
          assert.equal(t.dtype, t.n_dims === 2 ? TYPE_IDS[type] : 0, t.name);
          assert.equal(Number(t.offset) % 32, 0, t.name);
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("the tokenizer of tokenizer.json travels with the file", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "bringup-gguf-js-"));
  try {
    const model = join(root, "models", "bringup", "tiny-shakespeare-qwen2");
    const out = join(tmp, "shakespeare.gguf");
    convert(model, "q8_0", out);
    const { metadata } = await gguf(out, { allowLocalFile: true });
    const tok = JSON.parse(readFileSync(join(model, "tokenizer.json"), "utf8"));
    assert.equal(metadata["tokenizer.ggml.model"], "gpt2");
    assert.equal(metadata["tokenizer.ggml.pre"], "qwen2");
    const tokens = metadata["tokenizer.ggml.tokens"];
    assert.ok(tokens.length >= Object.keys(tok.model.vocab).length);
    for (const [t, id] of Object.entries(tok.model.vocab).slice(0, 2000)) assert.equal(tokens[id], t);
    for (const a of tok.added_tokens) {
      assert.equal(tokens[a.id], a.content);
      assert.equal(metadata["tokenizer.ggml.token_type"][a.id], 3);
    }
    assert.equal(metadata["tokenizer.ggml.merges"].length, tok.model.merges.length);
    assert.equal(tokens[metadata["tokenizer.ggml.eos_token_id"]], "<|im_end|>");
    assert.ok(metadata["tokenizer.chat_template"].includes("im_start"));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("a checkpoint without tokenizer.json converts with a note that llama.cpp needs a vocabulary",
     async () => {
  const tmp = mkdtempSync(join(tmpdir(), "bringup-gguf-js-"));
  try {
    const run = (model, out) => spawnSync(
        cli, ["convert", "--model", model, "--type", "q8_0", "--out", out], { encoding: "utf8" });
    const bare = run(join(root, "tests", "data", "golden", "qwen2-gqa7-small"), join(tmp, "a.gguf"));
    assert.equal(bare.status, 0, bare.stderr);
    assert.match(bare.stderr, /has no tokenizer\.json, so the GGUF file has no vocabulary/);
    const { metadata } = await gguf(join(tmp, "a.gguf"), { allowLocalFile: true });
    assert.equal(metadata["tokenizer.ggml.model"], undefined);
    const full = run(join(root, "models", "bringup", "tiny-shakespeare-qwen2"), join(tmp, "b.gguf"));
    assert.equal(full.status, 0, full.stderr);
    assert.doesNotMatch(full.stderr, /no vocabulary/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

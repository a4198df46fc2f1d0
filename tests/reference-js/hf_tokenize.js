// Reads JSON strings, one per line, on stdin; writes {"ids": [...], "decoded": "..."} per line,
// computed by Hugging Face tokenizers (Rust, through its Node.js binding).
//   node hf_tokenize.js TOKENIZER_JSON < texts.jsonl > results.jsonl
// This binding predates merges written as ["a", "b"] pairs and the ignore_merges field, so the
// tokenizer.json is rewritten into the older (equivalent) form before loading.
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
if (spec.model.ignore_merges) throw new Error("ignore_merges=true is not supported by this binding");
delete spec.model.ignore_merges;
spec.model.merges = spec.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
const tokenizer = Tokenizer.fromString(JSON.stringify(spec));

(async () => {
  const lines = fs.readFileSync(0, "utf8").split("\n").filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const text = JSON.parse(line);
    const ids = (await tokenizer.encode(text)).getIds();
    const decoded = await tokenizer.decode(ids, false);
    out.push(JSON.stringify({ ids, decoded }));
  }
  process.stdout.write(out.join("\n") + "\n");
})();

// A bounded load test on loopback: 200 requests from 32 concurrent clients, streamed and not, of
// mixed lengths, a third of them behind one long shared prefix. Every answer must equal what
// `bringup generate --prompts-jsonl` gives for its prompt at temperature 0 (none lost, none
// duplicated), the prefix cache must hit, and the server's peak resident memory must stay under
// what `bringup plan` says for the same options.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { serve, metric, cli, model, options } from "./serve.mjs";

const words = ["my", "lord", "the", "king", "is", "come", "to", "court", "and", "she", "doth",
               "weep", "for", "love", "of", "him", "that", "was", "slain", "in", "war"];
const shared = Array.from({ length: 220 }, (_, i) => words[(i * 7) % words.length]).join(" ");

function requests() {
  const out = [];
  for (let i = 0; i < 200; ++i) {
    const own = Array.from({ length: 3 + (i % 11) }, (_, j) => words[(i * 13 + j * 5) % words.length]);
    out.push({ prompt: (i % 3 === 0 ? shared + " " : "") + own.join(" "),
               max_tokens: 4 + ((i * 7) % 37), stream: i % 2 === 1 });
  }
  return out;
}

let server;
before(async () => { server = await serve(); });
after(async () => { await server.stop(); });

async function ask(r) {
  const res = await fetch(server.url + "/v1/completions", {
    method: "POST",
    body: JSON.stringify({ prompt: r.prompt, max_tokens: r.max_tokens, temperature: 0,
                           stream: r.stream }),
  });
  assert.equal(res.status, 200);
  if (!r.stream) {
    const j = await res.json();
    return { id: j.id, text: j.choices[0].text };
  }
  const body = await res.text();
  let text = "", id = null;
  for (const line of body.split("\n\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const chunk = JSON.parse(line.slice(6));
    id = chunk.id;
    for (const c of chunk.choices) text += c.text;
  }
  assert.ok(body.endsWith("data: [DONE]\n\n"));
  return { id, text };
}

test("200 requests at 32 concurrent clients get generate's answers", async () => {
  const rs = requests();
  // What generate gives for each prompt alone-equivalent (its batch is batch-invariant).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bringup-load-"));
  const jsonl = path.join(dir, "prompts.jsonl");
  fs.writeFileSync(jsonl, rs.map((r) => JSON.stringify({ prompt: r.prompt,
                                                         max_new_tokens: r.max_tokens })).join("\n"));
  const want = execFileSync(cli, ["generate", "--model", model, "--prompts-jsonl", jsonl,
                                  "--temperature", "0", ...options], { maxBuffer: 1 << 26 })
    .toString().trim().split("\n").map((l) => JSON.parse(l).text);
  fs.rmSync(dir, { recursive: true });

  const got = new Array(rs.length);
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < rs.length) {
      const i = next++;
      got[i] = await ask(rs[i]);
    }
  }));
  const ids = new Set(got.map((g) => g.id));
  assert.equal(ids.size, rs.length, "every answer has an id of its own");
  for (let i = 0; i < rs.length; ++i) assert.equal(got[i].text, want[i], "request " + i);

  assert.ok(await metric(server.url, "bringup:prefix_cache_hits_total") >= 60 * 192,
            "the shared prefix came from the cache");
  assert.equal(await metric(server.url, "bringup:request_success_total"), rs.length);
  assert.equal(await metric(server.url, "bringup:num_requests_running"), 0);

  // Peak resident memory of the server against the plan for its options.
  const plan = execFileSync(cli, ["plan", "--model", model, "--precision", "bfp8-mixed",
                                  "--device-memory", "64GiB", ...options.slice(0, 4)]).toString();
  const total = plan.match(/^ {2}total +([\d.]+) (GiB|MiB|KiB)$/m);
  const scale = { GiB: 1 << 30, MiB: 1 << 20, KiB: 1 << 10 }[total[2]];
  const planned = Number(total[1]) * scale;
  const status = fs.readFileSync(`/proc/${server.pid}/status`, "utf8");
  const peak = Number(status.match(/VmHWM:\s+(\d+) kB/)[1]) * 1024;
  assert.ok(peak < planned, `peak resident ${peak} bytes, plan ${planned}`);
});

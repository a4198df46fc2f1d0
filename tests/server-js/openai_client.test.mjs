// The official OpenAI SDK (npm `openai`, major version 6) against `bringup serve`: what its
// users' code does must work unchanged.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { serve, metric } from "./serve.mjs";

let server, client;
const messages = [{ role: "user", content: "Where is my lord?" }];

before(async () => {
  server = await serve(["--api-key", "sesame"]);
  client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "sesame", maxRetries: 0 });
});
after(async () => { await server.stop(); });

test("a chat completion", async () => {
  const r = await client.chat.completions.create({ model: "tiny-shakespeare-qwen2", messages,
                                                   max_tokens: 16, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.choices[0].message.content.length > 0);
  assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.choices[0].finish_reason, "length");
});

test("a streamed chat carries the same text, and include_usage its usage", async () => {
  const whole = await client.chat.completions.create({ model: "tiny-shakespeare-qwen2", messages,
                                                       max_tokens: 20, temperature: 0 });
  const stream = await client.chat.completions.create({
    model: "tiny-shakespeare-qwen2", messages, max_tokens: 20, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = "", usage = null, finish = null, role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, "assistant");
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 20);
});

test("stop, n and logprobs", async () => {
  const whole = await client.chat.completions.create({ model: "tiny-shakespeare-qwen2", messages,
                                                       max_tokens: 24, temperature: 0 });
  const full = whole.choices[0].message.content;
  const stop = full.slice(5, 8);
  const r = await client.chat.completions.create({
    model: "tiny-shakespeare-qwen2", messages, max_tokens: 24, temperature: 0, stop: [stop], n: 2,
    logprobs: true, top_logprobs: 2 });
  assert.equal(r.choices.length, 2);
  for (const c of r.choices) {
    assert.equal(c.message.content, full.slice(0, full.indexOf(stop)));
    assert.equal(c.finish_reason, "stop");
    assert.ok(c.logprobs.content.length > 0);
    assert.equal(c.logprobs.content[0].top_logprobs.length, 2);
  }
});

test("a completion from token ids", async () => {
  const ids = (await (await fetch(server.url + "/tokenize", {
    method: "POST", headers: { Authorization: "Bearer sesame" },
    body: JSON.stringify({ prompt: "ROMEO:" }) })).json()).tokens;
  const r = await client.completions.create({ model: "tiny-shakespeare-qwen2", prompt: ids,
                                              max_tokens: 8, temperature: 0, logprobs: 1 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.usage.prompt_tokens, ids.length);
  assert.equal(r.choices[0].logprobs.tokens.length, 8);
});

test("a wrong API key is the SDK's AuthenticationError", async () => {
  const wrong = new OpenAI({ baseURL: server.url + "/v1", apiKey: "nope", maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model: "tiny-shakespeare-qwen2", messages, max_tokens: 2 }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test("a stream aborted after a few chunks is cancelled and its KV blocks freed", async () => {
  const idle = await metric(server.url, "bringup:kv_cache_usage_perc");
  const stream = await client.chat.completions.create({
    model: "tiny-shakespeare-qwen2", messages: [{ role: "user", content: "Tell a long tale" }],
    max_tokens: 450, temperature: 0.8, stream: true });
  let chunks = 0;
  for await (const _ of stream) {
    if (++chunks === 4) { stream.controller.abort(); break; }
  }
  let running = 1, usage = 1;
  for (let i = 0; i < 100 && (running !== 0 || usage !== idle); ++i) {
    await new Promise((r) => setTimeout(r, 50));
    running = await metric(server.url, "bringup:num_requests_running");
    usage = await metric(server.url, "bringup:kv_cache_usage_perc");
  }
  assert.equal(running, 0);
  assert.equal(usage, idle);
  assert.ok(await metric(server.url, "bringup:generation_tokens_total") < 450 + 100);
});

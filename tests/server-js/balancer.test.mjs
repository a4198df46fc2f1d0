// Replicas behind a real load balancer: two `bringup serve` processes on loopback ports behind
// Debian's nginx, configured as docs/serving.md shows. Requests through nginx are served by both
// replicas (their /metrics say so), streams pass through unbuffered, and answers at temperature 0
// do not depend on the replica.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { serve, metric, root } from "./serve.mjs";

let replicas = [], nginx, dir, url;

async function free_port() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  replicas = [await serve(), await serve()];
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bringup-nginx-"));
  const port = await free_port();
  const upstreams = replicas.map((r) => "    server " + r.url.replace("http://", "") + ";").join("\n");
  // The recipe of docs/serving.md, with paths under a temporary prefix.
  const recipe = fs.readFileSync(path.join(root, "docs/nginx-bringup.conf"), "utf8")
    .replace(/ {4}server 127\.0\.0\.1:8081;\n {4}server 127\.0\.0\.1:8082;/, upstreams)
    .replace("listen 127.0.0.1:8080;", `listen 127.0.0.1:${port};`);
  fs.writeFileSync(path.join(dir, "nginx.conf"), `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${recipe}
}`);
  nginx = spawn(process.env.NGINX || "/usr/sbin/nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf")],
                { stdio: "inherit" });
  url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; ++i) {
    try { if ((await fetch(url + "/health")).ok) break; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(async () => {
  if (nginx) {
    const done = new Promise((r) => nginx.on("exit", r));
    nginx.kill("SIGTERM");
    await done;
  }
  for (const r of replicas) await r.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("both replicas serve requests sent through nginx", async () => {
  const body = { messages: [{ role: "user", content: "Good morrow" }], max_tokens: 12,
                 temperature: 0 };
  const texts = new Set();
  for (let i = 0; i < 8; ++i) {
    const r = await fetch(url + "/v1/chat/completions", { method: "POST",
                                                           body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    texts.add((await r.json()).choices[0].message.content);
  }
  assert.equal(texts.size, 1, "the same answer from either replica");
  const served = [];
  for (const r of replicas) served.push(await metric(r.url, "bringup:request_success_total"));
  assert.ok(served[0] >= 1 && served[1] >= 1, "requests per replica: " + served);
  assert.equal(served[0] + served[1], 8);

  // A stream through the balancer arrives as events, ending in [DONE].
  const s = await fetch(url + "/v1/chat/completions", { method: "POST",
    body: JSON.stringify({ ...body, stream: true }) });
  const text = await s.text();
  assert.match(s.headers.get("content-type"), /text\/event-stream/);
  assert.ok(text.trimEnd().endsWith("data: [DONE]"));
});

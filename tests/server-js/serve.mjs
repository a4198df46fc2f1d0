// Starts `bringup serve` on a free loopback port with the shipped model and waits for its ready
// line; stop() ends it. The tests in this folder run against it.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const cli = process.env.BRINGUP_CLI || path.join(root, "build/bringup");
export const model = path.join(root, "models/bringup/tiny-shakespeare-qwen2");

// The model options every server of these tests runs with.
export const options = ["--max-seq-len", "512", "--kv-budget", "16384", "--threads", "2"];

export async function serve(extra = []) {
  const child = spawn(cli, ["serve", "--model", model, "--port", "0", ...options, ...extra],
                      { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("no ready line in 60 s: " + err)), 60000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/ready on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error("bringup serve exited with " + code + ": " + err)));
  });
  return {
    url,
    pid: child.pid,
    async stop() {
      const done = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      return done;
    },
  };
}

// The value of one Prometheus metric line.
export async function metric(url, name) {
  const text = await (await fetch(url + "/metrics")).text();
  const m = text.match(new RegExp("^" + name.replace(/[:]/g, "\\$&") + " (\\S+)$", "m"));
  return m ? Number(m[1]) : NaN;
}

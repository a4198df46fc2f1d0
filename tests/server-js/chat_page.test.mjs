// The chat page in a real browser: Debian's chromium, headless, driven by playwright-core. It
// loads the page, sends a message at temperature 0, waits for the streamed answer, checks it
// equals the API's answer, and saves a screenshot (BRINGUP_SCREENSHOT, else the build folder).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve, root } from "./serve.mjs";

let server, browser;
before(async () => {
  server = await serve();
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                    args: ["--no-sandbox", "--headless=new"] });
});
after(async () => {
  if (browser) await browser.close();
  await server.stop();
});

test("the chat page streams the API's answer", async () => {
  const page = await browser.newPage();
  await page.goto(server.url + "/");
  await page.fill("#temperature", "0");
  await page.fill("#max_tokens", "24");
  await page.fill("#prompt", "Good morrow, cousin");
  await page.click("#send");
  const answer = page.locator(".msg.assistant[data-done='1']");
  await answer.waitFor({ timeout: 60000 });
  const shown = await answer.textContent();
  const api = await (await fetch(server.url + "/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ messages: [{ role: "user", content: "Good morrow, cousin" }],
                           max_tokens: 24, temperature: 0 }) })).json();
  assert.equal(shown, api.choices[0].message.content);
  assert.match(await page.textContent("#stats"), /time to first token \d+ ms, 24 tokens/);
  const shot = process.env.BRINGUP_SCREENSHOT || path.join(root, "build", "chat-page.png");
  await page.screenshot({ path: shot });
});

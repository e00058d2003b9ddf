// The app and the widget in headless Chromium, against the real server that
// tests/browser.rs started (with a fake OpenAI-compatible model server).
// Env: BASE_URL, SIGNIN_LINK (family A), TOKEN_B (family B), WIDGET_TOKEN (A),
// HOST_PORT (a port for a third-party page that embeds the widget),
// TRANSCRIPT (what the fake transcriber says), SCREENSHOT_DIR (optional).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { BASE_URL, SIGNIN_LINK, TOKEN_B, WIDGET_TOKEN, HOST_PORT, TRANSCRIPT, SCREENSHOT_DIR } = process.env;
// A real 2×2 PNG.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP438AARAwQCgAt7gX9iz9uhAAAAABJRU5ErkJggg==", "base64");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
});
const problems = [];
const step = (name) => console.log(`• ${name}`);

async function newPage(options = {}) {
  // bypassCSP only so axe can be injected; the app's own CSP is checked by the Rust tests.
  const context = await browser.newContext({ bypassCSP: true, permissions: ["microphone"], ...options });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error on ${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  return page;
}

async function axe(page, screen) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), [], `accessibility on ${screen}`);
}

async function shot(page, name) {
  if (!SCREENSHOT_DIR) return;
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOT_DIR}/${name}.png`, fullPage: false });
}

async function send(page, text) {
  const input = page.getByRole("textbox", { name: /message|메시지/i });
  await input.fill(text);
  await input.press("Enter");
}

try {
  // ---- Family A signs in with a one-time link and records an entry. ----
  step("sign in with the link");
  const page = await newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(SIGNIN_LINK);
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  assert.match(page.url(), /#\/chat$/, "the link is gone from the address bar");
  assert.ok(await page.evaluate(() => localStorage.getItem("dadly.token")), "a session token is kept");
  await axe(page, "chat");

  step("record an entry in the chat and see it in the timeline");
  await send(page, "Minji lost her first tooth at the playground today");
  await page.locator('.dadly-w-bot[data-kind="recorded"]').waitFor();
  await page.getByRole("link", { name: "Timeline" }).click();
  await page.locator(".entry", { hasText: "Minji lost her first tooth at the playground" }).waitFor();
  await axe(page, "timeline");

  // (Indexing is asynchronous: on a busy machine the entry is searchable a moment later.)
  await page.evaluate(async () => {
    const token = localStorage.getItem("dadly.token");
    for (let i = 0; i < 800; i++) {
      const s = await (await fetch("/v1/status", { headers: { authorization: `Bearer ${token}` } })).json();
      if (s.jobs.queued === 0 && s.jobs.running === 0) return;
      await new Promise((done) => setTimeout(done, 25));
    }
    throw new Error("the entry's jobs never finished");
  });

  step("ask and watch the answer stream in, with a citation card that opens the entry");
  await page.getByRole("link", { name: "Chat" }).click();
  await page.locator(".dadly-w-log").waitFor();
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const bots = document.querySelectorAll(".dadly-w-bot");
      const last = bots[bots.length - 1];
      if (last) window.__seen.push(last.textContent);
    }).observe(document.querySelector(".dadly-w-log"), { subtree: true, childList: true, characterData: true });
  });
  await send(page, "When did Minji lose her first tooth?");
  const answer = page.locator('.dadly-w-bot[data-kind="answered"]');
  await answer.waitFor();
  const seen = [...new Set(await page.evaluate(() => window.__seen))];
  assert.ok(seen.length > 3, `the answer grew piece by piece: ${JSON.stringify(seen)}`);
  const cite = answer.locator(".dadly-w-cite").first();
  await cite.waitFor();
  assert.match(await cite.locator("time").textContent(), /^\d{4}-\d{2}-\d{2}$/);
  await shot(page, "chat");
  await cite.click();
  await page.waitForURL(/#\/entry\//);
  await page.locator(".entry .text", { hasText: "first tooth at the playground" }).waitFor();
  await axe(page, "entry");
  await shot(page, "entry");

  step("attach a photo and see its thumbnail");
  await page.getByRole("link", { name: "Chat" }).click();
  await page.locator(".dadly-w-log").waitFor();
  await page.getByRole("textbox", { name: /message/i }).fill("Minji at the beach");
  await page.locator('.dadly-w input[type="file"]').setInputFiles({ name: "beach.png", mimeType: "image/png", buffer: PNG });
  const thumb = page.locator("img.dadly-w-thumb");
  await thumb.waitFor();
  await page.waitForFunction(() => { const i = document.querySelector("img.dadly-w-thumb"); return i && i.complete && i.naturalWidth === 2; });
  await page.getByRole("link", { name: "Timeline" }).click();
  const beach = page.locator(".entry", { hasText: "Minji at the beach" });
  await beach.locator(".thumbs img").waitFor();
  assert.equal(await page.getByRole("button", { name: "Show more" }).isVisible(), false, "no more pages");
  await page.waitForFunction(() => [...document.querySelectorAll(".thumbs img")].some((i) => i.complete && i.naturalWidth === 2));
  await shot(page, "timeline");

  step("record a voice note with the microphone and see it transcribed");
  await page.getByRole("link", { name: "Chat" }).click();
  await page.getByRole("button", { name: "Record a voice note" }).click();
  await page.getByRole("button", { name: "Stop recording and save" }).waitFor();
  await page.waitForTimeout(1200);
  await page.getByRole("button", { name: "Stop recording and save" }).click();
  await page.locator(".dadly-w-me", { hasText: `Transcribed: ${TRANSCRIPT}` }).waitFor({ timeout: 30000 });
  await page.getByRole("link", { name: "Timeline" }).click();
  await page.locator(".entry", { hasText: TRANSCRIPT }).waitFor();

  step("the other screens: children, capsules, family, settings");
  await page.getByRole("link", { name: "Children" }).click();
  await page.getByRole("heading", { name: "Children" }).waitFor();
  await page.locator("form.card").first().waitFor();
  await axe(page, "children");
  await shot(page, "children");
  await page.getByRole("link", { name: "Time capsules" }).click();
  await page.getByRole("button", { name: /Seal it/ }).waitFor();
  await page.getByLabel("Opens on").fill("2040-03-14");
  await page.getByLabel("Message").fill("Dear Minji, open this when you are grown.");
  await page.getByRole("button", { name: /Seal it/ }).click();
  await page.getByText("🔒 sealed").waitFor();
  assert.equal(await page.getByText("open this when you are grown").count(), 0, "a sealed capsule shows no content");
  await axe(page, "capsules");
  await shot(page, "capsules");
  await page.getByRole("link", { name: "Family" }).click();
  await page.getByRole("button", { name: "Make an invite code" }).waitFor();
  await axe(page, "family");
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("button", { name: "Make a widget snippet" }).click();
  await page.locator("code.block", { hasText: "widget.js" }).waitFor();
  await axe(page, "settings");

  // ---- Family B sees none of it. ----
  step("a second family's token shows only its own (empty) journal");
  const other = await newPage();
  await other.goto(BASE_URL + "/");
  await other.getByLabel("Token").fill(TOKEN_B);
  await axe(other, "sign-in");
  await shot(other, "sign-in");
  await other.getByRole("button", { name: "Sign in" }).click();
  await other.getByRole("navigation", { name: "Main" }).waitFor();
  await other.getByRole("link", { name: "Timeline" }).click();
  await other.getByText("No entries yet.").waitFor();
  const body = await other.locator("main").textContent();
  for (const secret of ["first tooth", "beach", TRANSCRIPT]) assert.ok(!body.includes(secret), `family B sees "${secret}"`);
  await other.getByRole("link", { name: "Time capsules" }).click();
  await other.getByRole("button", { name: /Seal it/ }).waitFor();
  assert.equal(await other.locator("main li.card").count(), 0, "no capsules of family A");

  // ---- The widget on a family's own site, at phone width, in Korean. ----
  step("the widget on another site, at phone width, in Korean");
  const host = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html lang="ko"><head><meta name="viewport" content="width=device-width"><title>우리 가족</title></head>
      <body><main><h1>김씨네 가족 블로그</h1><p>환영합니다.</p></main>
      <script src="${BASE_URL}/widget.js" data-token="${WIDGET_TOKEN}" async></script></body></html>`);
  });
  await new Promise((r) => host.listen(Number(HOST_PORT), "127.0.0.1", r));
  const phone = await newPage({ viewport: { width: 390, height: 844 }, locale: "ko-KR", isMobile: true, hasTouch: true });
  await phone.goto(`http://127.0.0.1:${HOST_PORT}/`);
  assert.equal(await phone.locator(".dadly-w-panel").isVisible(), false, "the panel starts closed");
  await phone.getByRole("button", { name: "Dadly 채팅 열기" }).click();
  const box = await phone.locator(".dadly-w-panel").boundingBox();
  assert.ok(box.width <= 390 && box.x >= 0, `the panel fits the phone: ${JSON.stringify(box)}`);
  await send(phone, "When did Minji lose her first tooth?");
  const phoneAnswer = phone.locator('.dadly-w-bot[data-kind="answered"]');
  await phoneAnswer.waitFor();
  await phoneAnswer.locator(".dadly-w-cite").first().click();
  await phone.locator(".dadly-w-entry", { hasText: "first tooth at the playground" }).waitFor();
  await axe(phone, "widget");
  await shot(phone, "widget-phone");
  host.close();

  assert.deepEqual(problems, [], "no console errors on any screen");
  console.log("browser tests passed");
} catch (e) {
  console.error(e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}

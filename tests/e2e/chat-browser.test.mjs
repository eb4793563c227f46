// The chat example in a real browser (docs/examples.md, section 3): Debian's Chromium,
// headless, driven through the npm package playwright-core. Pages in one room talk both ways,
// rooms stay apart, the HTTP API posts into a room, presence follows pages that come and go,
// a polling-only page works, markup stays text, and the status follows the server. The last
// test runs two chat processes with REDIS_URL on a private redis-server (started on a free
// port, stopped at the end) and checks that they make one chat.
//
// Run from the repository root:   node --test tests/e2e/chat-browser.test.mjs
// Needs:                          Chromium at /usr/bin/chromium (or $CHROMIUM), redis-server on
//                                 the PATH, `npm ci` in tests/e2e and in examples/chat,
//                                 `cargo build -p chat`
// Binary under test:              $CHAT_BIN, default <repo>/target/debug/chat
//
// Screenshots go to target/e2e-screenshots/. With UPDATE_SCREENSHOT=1 the picture of two
// rooms side by side is also copied to docs/images/chat.png (the README's screenshot).
//
// The tests of this file run in order and share one server and one browser.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants as fsConstants, copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer, startRedis } from "./server.mjs";

const BIN = process.env.CHAT_BIN || fileURLToPath(new URL("../../target/debug/chat", import.meta.url));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../../target/e2e-screenshots/", import.meta.url));
const README_SHOT = fileURLToPath(new URL("../../docs/images/chat.png", import.meta.url));
/** How long anything the page should show may take to show. */
const WAIT_MS = 5_000;
const VIEWPORT = { width: 560, height: 400 };

let server;
let base;
let browser;
const pages = new Set();
const pageErrors = [];

before(async () => {
  try {
    accessSync(CHROMIUM, fsConstants.X_OK);
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}; install it with \`apt-get install -y chromium\` (scripts/test.sh does) or point CHROMIUM at one`);
  }
  mkdirSync(SHOTS, { recursive: true });
  const env = { ...process.env };
  delete env.REDIS_URL; // the in-memory adapter
  server = startServer({
    bin: BIN,
    env,
    label: "chat",
    hint: "build it with `cargo build -p chat` (and `npm ci` in examples/chat) or point CHAT_BIN at it",
  });
  base = `http://127.0.0.1:${await server.ready}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens the chat with `query` in a browser of its own and waits until it is connected. */
async function openChat(query) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`${query.name}: ${err.message}`));
  pages.add(page);
  await page.goto(`${base}/?${new URLSearchParams(query)}`);
  await waitForText(page, "#status", "connected");
  return page;
}

async function closeChat(page) {
  pages.delete(page);
  await page.context().close();
}

/** Waits until the text of `selector` is exactly `expected`; says what it was otherwise. */
async function waitForText(page, selector, expected) {
  try {
    await page.waitForFunction(
      ([selector, expected]) => document.querySelector(selector)?.textContent === expected,
      [selector, String(expected)],
      { timeout: WAIT_MS },
    );
  } catch {
    const actual = await page.locator(selector).textContent();
    assert.fail(`${page.url()}: ${selector} reads ${JSON.stringify(actual)}, not ${JSON.stringify(String(expected))}`);
  }
}

/** Waits until a message containing `text` is on the page. */
async function waitForMessage(page, text) {
  await page.locator("#messages li", { hasText: text }).waitFor({ timeout: WAIT_MS });
}

/** Types `text` into the form and sends it with Enter. */
async function send(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

const messages = (page) => page.locator("#messages li").allTextContents();

function post(room, body) {
  return fetch(`${base}/api/rooms/${encodeURIComponent(room)}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

let ada;
let bob;
let cy;
let dee;

test("two pages of one room talk both ways; a page in another room sees none of it", { timeout: 20_000 }, async () => {
  ada = await openChat({ room: "lobby", name: "ada" });
  bob = await openChat({ room: "lobby", name: "bob" });
  cy = await openChat({ room: "rust", name: "cy" });
  for (const [page, online] of [[ada, 2], [bob, 2], [cy, 1]]) await waitForText(page, "#online", online);

  await send(ada, "hello from ada");
  await waitForMessage(bob, "hello from ada");
  await waitForMessage(ada, "hello from ada"); // the sender's own message comes back too
  await send(bob, "hi ada, bob here");
  await waitForMessage(ada, "hi ada, bob here");
  await waitForMessage(bob, "hi ada, bob here");

  // Once cy's own message is back, anything sent to it earlier would be there too.
  await send(cy, "anyone into lifetimes?");
  await waitForMessage(cy, "anyone into lifetimes?");
  assert.deepEqual(await messages(cy), ["cy: anyone into lifetimes?"]);
  // The same check the other way: ada's next message comes after cy's in the server's order.
  await send(ada, "lunch at noon?");
  await waitForMessage(bob, "lunch at noon?");
  const lobby = ["ada: hello from ada", "bob: hi ada, bob here", "ada: lunch at noon?"];
  assert.deepEqual(await messages(ada), lobby);
  assert.deepEqual(await messages(bob), lobby);
  assert.deepEqual(pageErrors, []);
});

test("POST /api/rooms/{room}/messages shows on both pages of that room only", { timeout: 20_000 }, async () => {
  const res = await post("lobby", { name: "deploy-bot", text: "v0.2 is out" });
  assert.equal(res.status, 204);
  await waitForMessage(ada, "deploy-bot: v0.2 is out");
  await waitForMessage(bob, "deploy-bot: v0.2 is out");

  const rust = await post("rust", { name: "ferris", text: "welcome to #rust" });
  assert.equal(rust.status, 204);
  await waitForMessage(cy, "ferris: welcome to #rust");
  assert.deepEqual(await messages(cy), ["cy: anyone into lifetimes?", "ferris: welcome to #rust"]);
  assert.ok(!(await messages(ada)).some((m) => m.includes("#rust")), "a message of #rust reached #lobby");

  const bad = await post("lobby", { name: "deploy-bot" });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /text/);
  assert.equal((await post("lobby", "{not json")).status, 400);
});

test("two rooms side by side (the README's screenshot)", { timeout: 20_000 }, async () => {
  await send(bob, "on my way");
  await waitForMessage(ada, "bob: on my way");
  await send(cy, "always: the borrow checker is my friend");
  await waitForMessage(cy, "borrow checker");
  const lobby = await ada.screenshot({ path: `${SHOTS}chat-lobby-ada.png` });
  const rust = await cy.screenshot({ path: `${SHOTS}chat-rust-cy.png` });

  // Both pictures on one page, side by side, and a picture of that page.
  const frame = await browser.newPage({ viewport: { width: 2 * VIEWPORT.width + 36, height: VIEWPORT.height + 24 } });
  const img = (png) => `<img src="data:image/png;base64,${png.toString("base64")}" style="border:1px solid #d1d9e0;border-radius:8px">`;
  await frame.setContent(
    `<body style="margin:0;padding:12px;display:flex;gap:10px;background:#e6eaef">${img(lobby)}${img(rust)}</body>`,
  );
  const sideBySide = `${SHOTS}chat-two-rooms.png`;
  await frame.screenshot({ path: sideBySide });
  await frame.close();
  if (process.env.UPDATE_SCREENSHOT === "1") copyFileSync(sideBySide, README_SHOT);
});

test("markup in a message shows as text: no element is created, no script runs", { timeout: 20_000 }, async () => {
  const markup = `<b>x</b><img src=x onerror="window.__chatInjected = true">`;
  await send(ada, markup);
  await waitForMessage(bob, "<b>x</b>");
  const res = await post("lobby", { name: "<i>eve</i>", text: "<script>window.__chatInjected = true</script>" });
  assert.equal(res.status, 204);
  await waitForMessage(bob, "<i>eve</i>: <script>");
  for (const page of [ada, bob]) {
    const seen = await page.evaluate(() => ({
      elements: document.querySelectorAll("#messages b, #messages i, #messages img, #messages script").length,
      injected: window.__chatInjected === true,
      texts: [...document.querySelectorAll("#messages li")].slice(-2).map((li) => li.textContent),
    }));
    assert.deepEqual(seen, {
      elements: 0,
      injected: false,
      texts: [`ada: ${markup}`, "<i>eve</i>: <script>window.__chatInjected = true</script>"],
    });
  }
  await bob.screenshot({ path: `${SHOTS}chat-markup-as-text.png` });
});

test("a polling-only page (?transports=polling) works; the others upgrade to WebSocket", { timeout: 20_000 }, async () => {
  dee = await openChat({ room: "lobby", name: "dee", transports: "polling" });
  assert.equal(await dee.evaluate(() => socket.io.engine.transport.name), "polling");
  await ada.waitForFunction(() => socket.io.engine.transport.name === "websocket", null, { timeout: WAIT_MS });
  for (const page of [ada, bob, dee]) await waitForText(page, "#online", 3);

  await send(dee, "dee here, over long-polling");
  await waitForMessage(ada, "dee: dee here, over long-polling");
  await waitForMessage(bob, "dee: dee here, over long-polling");
  await send(ada, "welcome dee");
  await waitForMessage(dee, "ada: welcome dee");
  assert.equal(await dee.evaluate(() => socket.io.engine.transport.name), "polling");
  await dee.screenshot({ path: `${SHOTS}chat-polling-dee.png` });
});

test("#online drops when a page closes", { timeout: 20_000 }, async () => {
  await closeChat(bob); // a WebSocket page
  await waitForText(ada, "#online", 2);
  await waitForText(dee, "#online", 2);
  await closeChat(dee); // a long-polling page
  await waitForText(ada, "#online", 1);
  await waitForText(cy, "#online", 1); // the other room did not change
  assert.deepEqual(pageErrors, []);
});

test("#status reads disconnected when the server stops", { timeout: 20_000 }, async () => {
  const stopped = await server.stop();
  assert.deepEqual(stopped, { code: 0, signal: null });
  for (const page of pages) await waitForText(page, "#status", "disconnected");
  await ada.screenshot({ path: `${SHOTS}chat-server-stopped.png` });
  assert.deepEqual(pageErrors, []);
});

test("with REDIS_URL, two chat processes are one chat: messages and #online span both", { timeout: 20_000 }, async () => {
  // Pub/sub channels ignore database numbers: a Redis of its own shares no traffic with others.
  const redis = startRedis();
  const redisUrl = `redis://127.0.0.1:${await redis.ready}`;
  const nodes = [1, 2].map((n) =>
    startServer({
      bin: BIN,
      env: { ...process.env, REDIS_URL: redisUrl },
      label: `chat node ${n} (REDIS_URL=${redisUrl})`,
      hint: "build it with `cargo build -p chat` or point CHAT_BIN at it",
    }),
  );
  const opened = [];
  try {
    const [one, two] = await Promise.all(nodes.map((node) => node.ready));
    const room = "cluster";
    const open = async (port, name) => {
      const context = await browser.newContext({ viewport: VIEWPORT });
      opened.push(context);
      const page = await context.newPage();
      page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
      await page.goto(`http://127.0.0.1:${port}/?${new URLSearchParams({ room, name })}`);
      await waitForText(page, "#status", "connected");
      return page;
    };
    const eve = await open(one, "eve");
    const fay = await open(two, "fay");
    await waitForText(eve, "#online", 2);
    await waitForText(fay, "#online", 2);

    await send(eve, "from node one");
    await waitForMessage(fay, "eve: from node one");
    const res = await fetch(`http://127.0.0.1:${two}/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "ops", text: "posted on node two" }),
    });
    assert.equal(res.status, 204);
    await waitForMessage(eve, "ops: posted on node two");

    await fay.context().close();
    await waitForText(eve, "#online", 1);
    assert.deepEqual(pageErrors, []);
  } finally {
    for (const context of opened) await context.close().catch(() => {});
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  }
});

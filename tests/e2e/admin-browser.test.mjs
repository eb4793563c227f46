// The Admin UI itself (the built UI of the npm package @socket.io/admin-ui, served by interop
// under /admin-ui/ with ADMIN=1) in headless Chromium: it logs in, lists the namespaces and
// the sockets, shows a socket's room, and disconnects a socket. With ADMIN_UI_SCREENSHOT=1
// it saves docs/images/admin-ui.png (left alone otherwise, so CI rewrites no tracked file).
// Chromium: $CHROMIUM_BIN or /usr/bin/chromium (scripts/test.sh installs Debian's package).

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { io as connect } from "socket.io-client";
import { startServer } from "./server.mjs";

const BIN = process.env.INTEROP_BIN ?? "target/debug/interop";
const HINT = "build it with `cargo build -p interop` or point INTEROP_BIN at it";
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

function env() {
  const env = { ...process.env };
  for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY", "ADMIN_READONLY"]) delete env[name];
  return Object.assign(env, { ADMIN: "1", ADMIN_STATS_MS: "500" });
}

test("the Admin UI logs in, lists namespaces, sockets and rooms, and disconnects a socket", { timeout: 90_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN)`);
  const server = startServer({ bin: BIN, env: env(), label: "interop (ADMIN=1)", hint: HINT });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  let user;
  try {
    const url = `http://127.0.0.1:${await server.ready}`;
    user = connect(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await new Promise((resolve) => user.once("connect", resolve));
    assert.equal(await user.emitWithAck("join", "lobby"), true);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Only this server: the UI's web fonts and icons from elsewhere are not fetched.
    await page.route("**/*", (route) =>
      route.request().url().startsWith(url) ? route.continue() : route.abort(),
    );
    await page.goto(`${url}/admin-ui/`);

    await page.getByLabel("Server URL").fill(url);
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill("admin-pass");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByText("Connection").first().waitFor({ state: "hidden", timeout: 15_000 }).catch(() => {});

    // Dashboard: the namespaces with their socket counts, and this server.
    await page.goto(`${url}/admin-ui/#/`);
    await page.getByText("/admin").first().waitFor({ timeout: 15_000 });
    await page.getByText("/private").first().waitFor({ timeout: 15_000 });

    // Sockets: the user's socket is listed.
    await page.goto(`${url}/admin-ui/#/sockets/`);
    await page.locator("tr", { hasText: user.id }).filter({ hasText: "websocket" }).waitFor({ timeout: 15_000 });

    // Its details page shows the room it joined.
    await page.goto(`${url}/admin-ui/#/n/%2F/sockets/${user.id}`);
    await page.getByText("lobby").first().waitFor({ timeout: 15_000 });

    // Rooms: joining another room shows up live.
    assert.equal(await user.emitWithAck("join", "game-42"), true);
    await page.goto(`${url}/admin-ui/#/rooms/`);
    await page.getByText("game-42").first().waitFor({ timeout: 15_000 });

    if (process.env.ADMIN_UI_SCREENSHOT === "1") {
      await page.goto(`${url}/admin-ui/#/`);
      await page.getByText("/admin").first().waitFor({ timeout: 15_000 });
      await page.screenshot({ path: "docs/images/admin-ui.png" });
    }

    // Disconnect it from the UI (the action button of its row).
    await page.goto(`${url}/admin-ui/#/sockets/`);
    const id = user.id; // (the client forgets it on disconnect)
    const kicked = new Promise((resolve) => user.once("disconnect", resolve));
    await page.locator("tr", { hasText: id }).first().locator("button").last().click();
    assert.equal(await kicked, "io server disconnect");
    // ...and the UI hears of it: the socket's row (id, address, transport) leaves the list.
    await page
      .locator("tr", { hasText: id })
      .filter({ hasText: "websocket" })
      .waitFor({ state: "detached", timeout: 15_000 });
  } finally {
    user?.close();
    await browser.close();
    await server.stop();
  }
});

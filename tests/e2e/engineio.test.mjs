// End-to-end test of `conformance engineio` (contract: docs/examples.md, section 1, `conformance`)
// driven by the official npm client `engine.io-client`.
//
// Run from the repository root:   node --test tests/e2e/*.test.mjs
// Binary under test:              $CONFORMANCE_BIN, default <repo>/target/debug/conformance
// Set E2E_SERVER_LOG=1 to forward the server's stderr (tracing logs) to this process's stderr.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Socket } from "engine.io-client";
import { startServer as spawnServer } from "./server.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/conformance", import.meta.url));
const BIN = process.env.CONFORMANCE_BIN || DEFAULT_BIN;
const HOST = "127.0.0.1";
const WAIT_MS = 5_000; // upper bound for any single wait inside a test
const TEST_TIMEOUT_MS = 20_000; // upper bound for a whole test

// What the contract says the server announces in its handshake.
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------------------------

/** Spawns `conformance engineio` on an ephemeral port; resolves once it prints its port. */
function startServer() {
  return spawnServer({
    bin: BIN,
    args: ["engineio"],
    env: process.env,
    label: `${BIN} engineio`,
    hint: "build it with `cargo build -p conformance` or point CONFORMANCE_BIN at it",
  });
}

// ---------------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------------

const MODES = [
  { name: "websocket only", transports: ["websocket"], initial: "websocket", upgrade: false },
  { name: "polling only", transports: ["polling"], initial: "polling", upgrade: false },
  { name: "polling with upgrade", transports: ["polling", "websocket"], initial: "polling", upgrade: true },
];

/** Waits for `promise`, failing with `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Records everything a socket reports, from its creation on, so that no event can be missed
 * because a listener was attached too late.
 */
class Recorder {
  constructor(socket) {
    this.socket = socket;
    this.messages = [];
    this.waiters = [];
    this.closes = []; // [reason, description]
    this.errors = [];
    this.pings = 0;
    this.handshake = null;
    this.openTransport = null; // name of the transport in use when "open" fired
    this.upgrades = []; // names of the transports upgraded to
    this.upgradeErrors = [];
    socket.on("handshake", (data) => (this.handshake = data));
    socket.on("open", () => {
      this.openTransport = socket.transport.name;
      this._wake();
    });
    socket.on("message", (data) => {
      this.messages.push(data);
      this._wake();
    });
    socket.on("ping", () => {
      this.pings += 1;
      this._wake();
    });
    socket.on("upgrade", (transport) => {
      this.upgrades.push(transport.name);
      this._wake();
    });
    socket.on("upgradeError", (err) => {
      this.upgradeErrors.push(err);
      this._wake();
    });
    socket.on("error", (err) => {
      this.errors.push(err);
      this._wake();
    });
    socket.on("close", (reason, description) => {
      this.closes.push([reason, description]);
      this._wake();
    });
  }

  _wake() {
    for (const w of [...this.waiters]) w();
  }

  describeState() {
    const closes = this.closes.map(([r, d]) => `${r}${d ? ` (${explain(d)})` : ""}`);
    return (
      `transport=${this.socket.transport?.name} readyState=${this.socket.readyState} ` +
      `closes=[${closes.join(", ")}] errors=[${this.errors.map(explain).join(", ")}] ` +
      `upgradeErrors=[${this.upgradeErrors.map(explain).join(", ")}] pings=${this.pings}`
    );
  }

  /**
   * Resolves once `predicate()` is true; rejects on timeout, or as soon as the socket closes
   * or errors (unless `allowClose`), with the socket's state in the message.
   */
  until(predicate, what, { ms = WAIT_MS, allowClose = false } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let done;
        try {
          done = predicate();
        } catch (err) {
          finish(err);
          return;
        }
        if (done) finish();
        else if (!allowClose && (this.closes.length || this.errors.length)) {
          finish(new Error(`socket closed or failed while waiting for ${what}: ${this.describeState()}`));
        }
      };
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${ms} ms waiting for ${what}: ${this.describeState()}`)),
        ms,
      );
      const finish = (err) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.push(check);
      check();
    });
  }

  /** Takes the next `n` messages (waiting for them), in arrival order. */
  async take(n, what = `${n} message(s)`) {
    await this.until(() => this.messages.length >= n, what);
    return this.messages.splice(0, n);
  }

  /** Asserts that nothing more arrives within `ms` (catches duplicated echoes). */
  async assertNoMoreMessages(ms = 150) {
    await sleep(ms);
    assert.deepEqual(
      this.messages.map(summary),
      [],
      "the server sent more messages than were sent to it",
    );
  }

  assertHealthy() {
    assert.deepEqual(this.closes, [], `unexpected close: ${this.describeState()}`);
    assert.deepEqual(this.errors, [], `unexpected error: ${this.describeState()}`);
  }
}

function explain(x) {
  if (x instanceof Error) return `${x.message}${x.description ? ` / ${explain(x.description)}` : ""}`;
  if (x && typeof x === "object") {
    if (x.description !== undefined || x.context !== undefined) {
      return `${explain(x.description)}${x.context?.status ? ` status=${x.context.status}` : ""}`;
    }
    try {
      return JSON.stringify(x);
    } catch {
      return String(x);
    }
  }
  return String(x);
}

/** Short human-readable form of a message for assertion output. */
function summary(data) {
  if (typeof data === "string") return data.length > 60 ? `text(${data.length}) ${data.slice(0, 60)}…` : data;
  if (data instanceof Uint8Array) return `binary(${data.length}) ${Buffer.from(data.subarray(0, 16)).toString("hex")}`;
  return `${Object.prototype.toString.call(data)} ${String(data)}`;
}

/** Asserts `got` is the unchanged echo of `sent`: same kind (text/binary) and same content. */
function assertEcho(got, sent, label = "echo") {
  if (typeof sent === "string") {
    assert.equal(typeof got, "string", `${label}: text must come back as text, got ${summary(got)}`);
    assert.equal(got, sent, `${label}: text changed`);
  } else {
    assert.ok(
      Buffer.isBuffer(got),
      `${label}: binary must come back as binary (a Buffer), got ${summary(got)}`,
    );
    const expected = Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength);
    assert.equal(got.length, expected.length, `${label}: binary length changed`);
    assert.ok(got.equals(expected), `${label}: binary content changed: got ${summary(got)}, sent ${summary(expected)}`);
  }
}

/**
 * Opens an engine.io-client Socket in `mode` and waits until it is usable: open, and for the
 * upgrade mode, upgraded to WebSocket. Registers its closing with the test context.
 */
async function connect(t, port, mode) {
  const socket = new Socket(`http://${HOST}:${port}`, {
    transports: [...mode.transports],
    // the contract's path; engine.io-client adds the trailing slash
    path: "/engine.io/",
  });
  const rec = new Recorder(socket);
  t.after(() => socket.close());
  await rec.until(() => rec.openTransport !== null, `"open" (${mode.name})`);
  assert.equal(rec.openTransport, mode.initial, "transport used to open the connection");
  if (mode.upgrade) {
    await rec.until(
      () => rec.upgrades.length > 0 || rec.upgradeErrors.length > 0,
      `"upgrade" to websocket`,
    );
    assert.deepEqual(rec.upgradeErrors.map(explain), [], "upgrade must not fail");
    assert.deepEqual(rec.upgrades, ["websocket"], "upgrade event");
    assert.equal(socket.transport.name, "websocket", "transport after the upgrade");
  }
  rec.assertHealthy();
  return { socket, rec };
}

/** Sends `payloads` one after the other and checks they all come back unchanged, in order. */
async function assertEchoesInOrder(socket, rec, payloads) {
  for (const p of payloads) socket.send(p);
  const got = await rec.take(payloads.length, `the echo of ${payloads.length} message(s)`);
  assert.deepEqual(got.map(summary), payloads.map(summary), "echoes must arrive in the order sent");
  got.forEach((g, i) => assertEcho(g, payloads[i], `message #${i}`));
}

/** GET on the polling endpoint for a session id; resolves to the HTTP status and body. */
async function pollSid(port, sid) {
  const url = `http://${HOST}:${port}/engine.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, body: await res.text() };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe("conformance engineio, driven by engine.io-client", () => {
  let server;
  let port;

  before(async () => {
    server = startServer();
    port = await server.ready;
  });

  after(async () => {
    await server?.stop();
  });

  for (const mode of MODES) {
    describe(mode.name, () => {
      const opts = { timeout: TEST_TIMEOUT_MS };

      it("opens with the contract's handshake parameters", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        const hs = rec.handshake;
        assert.ok(hs, "a handshake was received");
        assert.equal(typeof hs.sid, "string");
        assert.ok(hs.sid.length > 0, "sid is not empty");
        assert.equal(socket.id, hs.sid);
        assert.equal(hs.pingInterval, PING_INTERVAL, "pingInterval");
        assert.equal(hs.pingTimeout, PING_TIMEOUT, "pingTimeout");
        assert.equal(hs.maxPayload, MAX_PAYLOAD, "maxPayload");
        assert.ok(Array.isArray(hs.upgrades), "upgrades is an array");
        if (mode.initial === "polling") {
          assert.ok(hs.upgrades.includes("websocket"), `polling handshake offers websocket: ${JSON.stringify(hs.upgrades)}`);
        }
      });

      it("echoes text as text", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        await assertEchoesInOrder(socket, rec, ["hello"]);
        // non-ASCII, and text that looks like engine.io framing, must not be altered
        await assertEchoesInOrder(socket, rec, ["héllo wörld ✓ 🚀 日本語"]);
        await assertEchoesInOrder(socket, rec, ["bAQID"]); // "b"+base64 as plain text
        await assertEchoesInOrder(socket, rec, ["x".repeat(50_000)]);
        await rec.assertNoMoreMessages();
        rec.assertHealthy();
      });

      it("echoes binary as binary with identical bytes", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        await assertEchoesInOrder(socket, rec, [new Uint8Array([1, 2, 3, 0, 255])]);
        await assertEchoesInOrder(socket, rec, [Buffer.from([0x34, 0x68, 0x69])]); // bytes of the text "4hi"
        await assertEchoesInOrder(socket, rec, [new Uint8Array([0])]);
        await assertEchoesInOrder(socket, rec, [randomBytes(100 * 1024)]);
        await rec.assertNoMoreMessages();
        rec.assertHealthy();
      });

      it("echoes a burst of mixed messages in order", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        const payloads = [];
        for (let i = 0; i < 40; i++) {
          payloads.push(i % 3 === 2 ? randomBytes(1 + (i * 37) % 200) : `message ${i}`);
        }
        await assertEchoesInOrder(socket, rec, payloads);
        await rec.assertNoMoreMessages();
        rec.assertHealthy();
      });

      it("stays connected across heartbeats", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        const started = Date.now();
        // With pingInterval 300 ms the server pings about every 300 ms and closes the session
        // when a pong is late by more than pingTimeout; three pings mean the first two pongs
        // were accepted.
        await rec.until(() => rec.pings >= 3, "3 pings from the server");
        await sleep(Math.max(0, 800 - (Date.now() - started)));
        rec.assertHealthy();
        assert.equal(socket.readyState, "open");
        await assertEchoesInOrder(socket, rec, ["still here", Buffer.from("still binary")]);
        rec.assertHealthy();
      });

      it("closes cleanly from the client", opts, async (t) => {
        const { socket, rec } = await connect(t, port, mode);
        await assertEchoesInOrder(socket, rec, ["before close"]);
        const sid = socket.id;
        socket.close();
        await rec.until(() => rec.closes.length > 0, `"close"`, { ms: 2_000, allowClose: true });
        assert.deepEqual(rec.errors, [], "no error while closing");
        assert.equal(rec.closes.length, 1, "exactly one close event");
        assert.equal(rec.closes[0][0], "forced close", "close reason");
        assert.equal(socket.readyState, "closed");
        if (mode.transports.length === 1 && mode.initial === "polling") {
          // The close packet went over HTTP: the server must forget the session.
          let last;
          for (let attempt = 0; attempt < 20; attempt++) {
            last = await pollSid(port, sid);
            if (last.status === 400) break;
            await sleep(100);
          }
          assert.equal(last.status, 400, `a poll on the closed session ${sid} must be refused, got ${last.status} ${last.body}`);
        }
        // the server keeps serving new connections after a client closed
        const next = await connect(t, port, mode);
        await assertEchoesInOrder(next.socket, next.rec, ["after close"]);
      });

      if (mode.upgrade) {
        it("keeps messages in order while upgrading", opts, async (t) => {
          // Unlike connect(), send as soon as the polling transport is open, so the messages
          // and their echoes straddle the switch to WebSocket.
          const socket = new Socket(`http://${HOST}:${port}`, {
            transports: [...mode.transports],
            path: "/engine.io/",
          });
          const rec = new Recorder(socket);
          t.after(() => socket.close());
          const payloads = [];
          for (let i = 0; i < 30; i++) payloads.push(i % 2 ? Buffer.from([i, 255 - i]) : `during upgrade ${i}`);
          socket.once("open", () => {
            // a few now, the rest spread over the next milliseconds
            payloads.slice(0, 10).forEach((p) => socket.send(p));
            let i = 10;
            const timer = setInterval(() => {
              if (i >= payloads.length || socket.readyState !== "open") return clearInterval(timer);
              socket.send(payloads[i++]);
            }, 5);
          });
          const got = await rec.take(payloads.length, `the echo of ${payloads.length} messages`);
          assert.equal(rec.openTransport, "polling", "transport used to open the connection");
          assert.deepEqual(got.map(summary), payloads.map(summary), "echoes must arrive in the order sent");
          got.forEach((g, i) => assertEcho(g, payloads[i], `message #${i}`));
          await rec.until(() => rec.upgrades.length > 0 || rec.upgradeErrors.length > 0, `"upgrade"`);
          assert.deepEqual(rec.upgradeErrors.map(explain), [], "upgrade must not fail");
          assert.equal(socket.transport.name, "websocket");
          await assertEchoesInOrder(socket, rec, ["after upgrade", Buffer.from([9, 8, 7])]);
          await rec.assertNoMoreMessages();
          rec.assertHealthy();
        });
      }
    });
  }
});

describe("conformance engineio shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"]) {
    it(`exits cleanly on ${signal}, closing open sessions`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const server = startServer();
      const port = await server.ready;
      const socket = new Socket(`http://${HOST}:${port}`, { transports: ["polling"] });
      const closed = new Promise((resolve) => socket.once("close", (reason) => resolve(reason)));
      await within(new Promise((resolve) => socket.once("open", resolve)), WAIT_MS, "open");

      const { code, signal: killedBy } = await server.stop(signal);
      assert.equal(killedBy, null, `the server died of ${killedBy} instead of exiting`);
      assert.equal(code, 0, "exit code");
      const reason = await within(closed, WAIT_MS, "client sees the close");
      assert.ok(typeof reason === "string" && reason.length > 0);
      socket.close();
    });
  }
});

// End-to-end tests of the `interop` example (contract: docs/examples.md, section 2) driven by the
// official npm client `socket.io-client` 4.x, with the default JSON parser and with
// `socket.io-msgpack-parser`.
//
// Run from the repository root:   node --test tests/e2e/*.test.mjs
// Binary under test:              $INTEROP_BIN (any executable), default <repo>/target/debug/interop
// Set E2E_SERVER_LOG=1 to forward the servers' stderr (tracing logs) to this process's stderr.
//
// One server process per parser (PARSER unset / PARSER=msgpack), each on PORT=0, started in
// `before` and stopped in `after`. PARSER, SIO_PATH, REDIS_URL and RECOVERY are never inherited
// from the caller's environment: the suite checks the default configuration (in-memory adapter,
// no connection state recovery), plus SIO_PATH in a test of its own.
// Every scenario runs over three transport setups (WebSocket only, polling only, polling
// upgraded to WebSocket) with both parsers; the HTTP routes run once per parser.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { io, Manager } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { startServer as spawnServer } from "./server.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BIN = process.env.INTEROP_BIN || DEFAULT_BIN;
const HOST = "127.0.0.1";
const WAIT_MS = 5_000; // upper bound for any single wait inside a test
const QUIET_MS = 300; // how long to wait when checking that something does NOT arrive
const TEST_TIMEOUT_MS = 20_000; // upper bound for a whole test
const ASK_TIMEOUT_MS = 2_000; // the contract's timeout of the server's `question` ack

// ---------------------------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------------------------

/** Spawns the interop server on an ephemeral port; `ready` resolves once it prints its port. */
function startServer(extraEnv = {}) {
  const env = { ...process.env };
  for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY"]) delete env[name];
  Object.assign(env, extraEnv);
  const settings = Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`).join(" ");
  return spawnServer({
    bin: BIN,
    env,
    label: `${BIN} (${settings || "defaults"})`,
    hint: "build it with `cargo build -p interop` or point INTEROP_BIN at it",
  });
}

// ---------------------------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------------------------

const PARSERS = [
  { name: "json parser", env: {}, parser: undefined },
  { name: "msgpack parser", env: { PARSER: "msgpack" }, parser: msgpackParser },
];

const MODES = [
  { name: "websocket only", transports: ["websocket"], initial: "websocket", upgrade: false },
  { name: "polling only", transports: ["polling"], initial: "polling", upgrade: false },
  // the client's default transports
  { name: "polling with upgrade", transports: ["polling", "websocket"], initial: "polling", upgrade: true },
];
const WEBSOCKET_MODE = MODES[0];

/** A unique suffix for room and event names, so that no test sees another test's traffic. */
const tag = () => randomBytes(4).toString("hex");

/**
 * Resolves with the arguments of the next `event` on `emitter`; rejects after `ms`.
 */
function once(emitter, event, ms = WAIT_MS, what = `"${event}"`) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    emitter.once(event, onEvent);
  });
}

/** Resolves once `predicate()` returns true (checked every 5 ms); rejects after `ms`. */
async function waitUntil(predicate, what, ms = WAIT_MS, describeState = () => "") {
  const deadline = Date.now() + ms;
  for (;;) {
    if (predicate()) return;
    if (Date.now() >= deadline) {
      const state = describeState();
      throw new Error(`timed out after ${ms} ms waiting for ${what}${state ? `: ${state}` : ""}`);
    }
    await sleep(5);
  }
}

function show(x) {
  if (Buffer.isBuffer(x)) return `<Buffer ${x.length} bytes>`;
  if (x instanceof Error) return `Error(${x.message}${x.data !== undefined ? `, data=${show(x.data)}` : ""})`;
  if (typeof x === "function") return "<ack fn>";
  if (typeof x === "string") return x.length > 80 ? JSON.stringify(`${x.slice(0, 80)}…`) + `(${x.length})` : JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(show).join(", ")}]`;
  if (x && typeof x === "object") {
    if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) return `<${x.constructor.name} ${x.byteLength} bytes>`;
    return `{${Object.entries(x).map(([k, v]) => `${k}: ${show(v)}`).join(", ")}}`;
  }
  return String(x);
}

/** What an argument looks like after a round trip: every binary view becomes a Node Buffer. */
function asReceived(x) {
  if (Buffer.isBuffer(x)) return x;
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (Array.isArray(x)) return x.map(asReceived);
  if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, asReceived(v)]));
  return x;
}

/** deepStrictEqual with a readable message (Buffers shown by size, not byte by byte). */
function assertSameArgs(got, sent, what) {
  const expected = asReceived(sent);
  assert.deepStrictEqual(got, expected, `${what}: got ${show(got)}, expected ${show(expected)}`);
}

/** Emits `event` with `args` and an ack; resolves with ALL the ack's arguments. */
function ackAll(socket, event, args = [], ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, ...args, (err, ...res) => {
      if (err) reject(new Error(`no ack for "${event}" within ${ms} ms (${err.message})`));
      else resolve(res);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/**
 * Records everything a socket.io-client Socket receives, from its creation on, so that no event
 * is missed because a listener was attached too late.
 */
class Client {
  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.inbox = []; // [{ event, args }]
    this.connects = 0;
    this.connectErrors = [];
    this.disconnects = []; // reasons
    socket.onAny((event, ...args) => this.inbox.push({ event, args }));
    socket.on("connect", () => (this.connects += 1));
    socket.on("connect_error", (err) => this.connectErrors.push(err));
    socket.on("disconnect", (reason) => this.disconnects.push(reason));
  }

  state() {
    const engine = this.socket.io.engine;
    return (
      `${this.label}: connected=${this.socket.connected} active=${this.socket.active} ` +
      `transport=${engine?.transport?.name} engine=${engine?.readyState} ` +
      `connect_errors=[${this.connectErrors.map(show).join(", ")}] disconnects=[${this.disconnects.join(", ")}] ` +
      `unread=[${this.inbox.map((m) => `${m.event}${show(m.args)}`).join(", ").slice(0, 400)}]`
    );
  }

  /**
   * Waits for `predicate()`; fails fast (with the client's state) when the socket disconnects or
   * its connection is refused while waiting, unless `allowDisconnect`.
   */
  async until(predicate, what, { ms = WAIT_MS, allowDisconnect = false } = {}) {
    const disconnects = this.disconnects.length;
    const errors = this.connectErrors.length;
    let failure = null;
    await waitUntil(
      () => {
        if (predicate()) return true;
        if (!allowDisconnect && (this.disconnects.length > disconnects || this.connectErrors.length > errors)) {
          failure = new Error(`${this.label} disconnected or was refused while waiting for ${what}: ${this.state()}`);
          return true;
        }
        return false;
      },
      what,
      ms,
      () => this.state(),
    );
    if (failure) throw failure;
  }

  count(event) {
    return this.inbox.filter((m) => m.event === event).length;
  }

  /** Takes the next `n` `event`s (waiting for them); resolves with their argument lists. */
  async take(event, n, opts = {}) {
    await this.until(() => this.count(event) >= n, `${n} "${event}" event(s) on ${this.label}`, opts);
    const taken = [];
    this.inbox = this.inbox.filter((m) => {
      if (m.event === event && taken.length < n) {
        taken.push(m.args);
        return false;
      }
      return true;
    });
    return taken;
  }

  /** Resolves with the arguments of the next `event`. */
  async next(event, opts = {}) {
    return (await this.take(event, 1, opts))[0];
  }

  /** Asserts that no (further) `event` has arrived; call after a quiet period. */
  assertNo(event, why = "") {
    const got = this.inbox.filter((m) => m.event === event);
    assert.deepEqual(
      got.map((m) => show(m.args)),
      [],
      `${this.label} must not receive "${event}"${why ? ` (${why})` : ""}`,
    );
  }

  /** Waits for the refusal of the namespace connection; resolves with the error. */
  async connectError(opts = {}) {
    await this.until(() => this.connectErrors.length > 0, `"connect_error" on ${this.label}`, {
      allowDisconnect: true,
      ...opts,
    });
    return this.connectErrors[0];
  }

  close() {
    this.socket.disconnect();
    this.socket.io._close(); // no reconnection attempt keeps the process alive
  }
}

// Per Manager: the transport each engine opened with, and the upgrades it made.
const engineLog = new WeakMap();

function trackEngines(manager) {
  const log = { opens: [], upgrades: [], upgradeErrors: [] };
  engineLog.set(manager, log);
  // "open" fires before the engine starts probing an upgrade, for the first engine and for every
  // engine of a reconnection.
  manager.on("open", () => {
    const engine = manager.engine;
    log.opens.push({ engine, transport: engine.transport.name });
    engine.on("upgrade", (transport) => log.upgrades.push({ engine, transport: transport.name }));
    engine.on("upgradeError", (err) => log.upgradeErrors.push({ engine, err }));
  });
}

/**
 * Asserts the current engine of `manager` uses the transports of `mode`: opened with the mode's
 * first transport, and in the upgrade mode, upgraded to WebSocket (waits for the upgrade).
 */
async function assertTransport(manager, mode) {
  const engine = manager.engine;
  const log = engineLog.get(manager);
  assert.ok(engine && log, "the manager has an engine");
  const opened = log.opens.find((o) => o.engine === engine);
  assert.ok(opened, "the current engine has opened");
  assert.equal(opened.transport, mode.initial, `transport the connection opened with (${mode.name})`);
  if (mode.upgrade) {
    const mine = (list) => list.filter((u) => u.engine === engine);
    await waitUntil(
      () => mine(log.upgrades).length > 0 || mine(log.upgradeErrors).length > 0,
      `"upgrade" to websocket`,
      WAIT_MS,
      () => `transport=${engine.transport?.name} readyState=${engine.readyState}`,
    );
    assert.deepEqual(mine(log.upgradeErrors).map((u) => show(u.err)), [], "the upgrade must not fail");
    assert.deepEqual(mine(log.upgrades).map((u) => u.transport), ["websocket"], "the upgrade event");
    assert.equal(engine.transport.name, "websocket", "transport after the upgrade");
  } else {
    assert.equal(engine.transport.name, mode.initial, "transport in use");
  }
  assert.equal(engine.readyState, "open", "engine state");
}

function managerOptions(ctx, mode) {
  return {
    transports: [...mode.transports],
    ...(ctx.parser.parser ? { parser: ctx.parser.parser } : {}),
    forceNew: true, // never share a Manager between tests
    timeout: WAIT_MS,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
  };
}

/**
 * Creates a socket on `nsp` (its own Manager unless `manager` is given) and records it. The
 * socket is closed when the test ends, whatever happens.
 */
function open(t, ctx, { nsp = "/", auth, manager, mode = ctx.mode } = {}) {
  let socket;
  if (manager) {
    socket = manager.socket(nsp, auth !== undefined ? { auth } : {});
  } else {
    socket = io(`${ctx.base}${nsp === "/" ? "" : nsp}`, {
      ...managerOptions(ctx, mode),
      ...(auth !== undefined ? { auth } : {}),
    });
    trackEngines(socket.io);
  }
  const client = new Client(socket, `socket of ${nsp} (${ctx.parser.name}, ${mode.name})`);
  t.after(() => client.close());
  return client;
}

/** A Manager for several namespaces on one connection; closed when the test ends. */
function openManager(t, ctx, mode = ctx.mode) {
  const manager = new Manager(ctx.base, managerOptions(ctx, mode));
  trackEngines(manager);
  t.after(() => manager._close());
  return manager;
}

/**
 * Opens a socket of `nsp` and waits for its `welcome` (kept in `client.welcome`) and, unless
 * `waitUpgrade` is false, for the connection to use the mode's final transport.
 */
async function connect(t, ctx, { waitUpgrade = true, mode = ctx.mode, ...opts } = {}) {
  const client = open(t, ctx, { mode, ...opts });
  const [welcome, ...rest] = await client.next("welcome");
  assert.deepEqual(rest, [], "welcome has one argument");
  assert.ok(client.socket.connected, `connected: ${client.state()}`);
  client.welcome = welcome;
  if (waitUpgrade) await assertTransport(client.socket.io, mode);
  return client;
}

/** Connects `n` sockets of `/` concurrently. */
function connectMany(t, ctx, n, opts = {}) {
  return Promise.all(Array.from({ length: n }, () => connect(t, ctx, opts)));
}

/** Echoes `args` with an ack and checks the ack carries them all. */
async function assertAckEcho(socket, args, what) {
  const got = await ackAll(socket, "echo", args);
  assertSameArgs(got, args, what);
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

const MIXED_ARGS = [
  "hello",
  "",
  "héllo wörld ✓ 🚀 日本語",
  0,
  42,
  -7,
  3.14159,
  -0.5,
  2 ** 40,
  true,
  false,
  null,
  { a: 1, b: { c: [1, 2, { d: "e" }], e: null, f: false, g: 2.5 }, "key with spaces": "v" },
  {},
  [],
  [1, "two", [3, [4, [5]]], { six: 6 }, null],
];

/** A `len`-character string: mostly ASCII (so it stays under maxPayload), a little non-ASCII. */
function bigText(len) {
  const tail = "é✓ü";
  const chars = [];
  for (let i = 0; i < len - tail.length; i++) chars.push(String.fromCharCode(33 + ((i * 7 + (i >> 10)) % 94)));
  return chars.join("") + tail;
}

function assertSameText(got, sent, what) {
  assert.equal(typeof got, "string", `${what}: a string must come back as a string, got ${show(got)}`);
  if (got !== sent) {
    let i = 0;
    while (i < Math.min(got.length, sent.length) && got[i] === sent[i]) i++;
    assert.fail(`${what}: text changed (length ${got.length}, sent ${sent.length}, first difference at ${i})`);
  }
}

function assertSameBytes(got, sent, what) {
  assert.ok(Buffer.isBuffer(got), `${what}: binary must come back as a Buffer, got ${show(got)}`);
  assert.equal(got.length, sent.length, `${what}: binary length`);
  assert.ok(got.equals(sent), `${what}: binary content changed`);
}

// ---------------------------------------------------------------------------------------------
// Scenarios, per parser and transport
// ---------------------------------------------------------------------------------------------

function scenarios(ctx) {
  const opts = { timeout: TEST_TIMEOUT_MS };

  it("connects: welcome has the socket id and the handshake auth ({} without auth)", opts, async (t) => {
    const auth = { token: "abc", n: 42, nested: { list: [1, "two", null, true], f: 1.5 } };
    const [a, b] = await Promise.all([connect(t, ctx, { auth }), connect(t, ctx)]);
    assert.equal(typeof a.socket.id, "string");
    assert.ok(a.socket.id.length > 0, "socket id is not empty");
    assert.deepStrictEqual(a.welcome, { id: a.socket.id, auth }, "welcome with auth");
    assert.deepStrictEqual(b.welcome, { id: b.socket.id, auth: {} }, "welcome without auth");
    assert.notEqual(a.socket.id, b.socket.id, "two sockets have different ids");
    for (const c of [a, b]) {
      assert.equal(typeof c.socket.io.engine.id, "string");
      assert.notEqual(c.socket.id, c.socket.io.engine.id, "the socket id is not the engine session id");
    }
  });

  it("echo without ack: arguments of every JSON type come back as an `echo` event", opts, async (t) => {
    const c = await connect(t, ctx);
    const sent = [MIXED_ARGS, ...MIXED_ARGS.map((a) => [a]), []];
    for (const args of sent) c.socket.emit("echo", ...args);
    const got = await c.take("echo", sent.length);
    got.forEach((args, i) => assertSameArgs(args, sent[i], `echo #${i}`));
    await sleep(100);
    c.assertNo("echo", "one echo per event sent");
  });

  it("echo with ack: the ack carries the same arguments, and no `echo` event is sent", opts, async (t) => {
    const c = await connect(t, ctx);
    for (const arg of MIXED_ARGS) {
      const got = await c.socket.timeout(WAIT_MS).emitWithAck("echo", arg);
      assertSameArgs(got, arg, `emitWithAck("echo", ${show(arg)})`);
    }
    await assertAckEcho(c.socket, MIXED_ARGS, "ack of echo with all the mixed arguments");
    await assertAckEcho(c.socket, ["a", 1, null], "ack of echo with three arguments");
    await assertAckEcho(c.socket, [], "ack of echo without arguments");
    // acks of concurrent requests are matched by id
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.socket.timeout(WAIT_MS).emitWithAck("echo", { i })),
    );
    assert.deepStrictEqual(many, Array.from({ length: 20 }, (_, i) => ({ i })), "concurrent acks");
    await sleep(100);
    c.assertNo("echo", "an event sent with an ack is answered by the ack only");
  });

  it("binary at any depth comes back as binary, in events and in acks", opts, async (t) => {
    const c = await connect(t, ctx);
    const b1 = Buffer.from([0, 1, 2, 253, 254, 255]);
    const b2 = Buffer.from("bytes that look like text");
    const big = randomBytes(64 * 1024);
    const cases = [
      [b1],
      [Buffer.alloc(0)],
      [{ file: b1, name: "f.bin" }],
      [{ outer: { list: ["a", b1, { deep: [big] }], n: 1 } }],
      [b1, "text", { two: b2 }, [b2, b1], 7, null],
    ];
    // notepack (socket.io-msgpack-parser) writes Buffers as msgpack bin but other binary views as
    // a private ext type, so only the JSON parser gets a Uint8Array.
    if (!ctx.parser.parser) cases.push([new Uint8Array([9, 8, 7]), { v: new Uint8Array([1]) }]);

    for (const args of cases) c.socket.emit("echo", ...args);
    const got = await c.take("echo", cases.length);
    got.forEach((args, i) => assertSameArgs(args, cases[i], `binary echo #${i}`));

    for (const [i, args] of cases.entries()) {
      await assertAckEcho(c.socket, args, `binary ack #${i}`);
    }
    const [first] = got[0];
    assert.ok(Buffer.isBuffer(first), `a top-level binary argument is a Buffer, got ${show(first)}`);
  });

  it("500 KB text and 500 KB binary are echoed intact", opts, async (t) => {
    const c = await connect(t, ctx);
    const text = bigText(500_000);
    assert.equal(text.length, 500_000);
    const bin = randomBytes(500_000);
    const [gotText, ...rest1] = await ackAll(c.socket, "echo", [text], 10_000);
    assert.equal(rest1.length, 0);
    assertSameText(gotText, text, "500 KB text");
    const [gotBin, ...rest2] = await ackAll(c.socket, "echo", [bin], 10_000);
    assert.equal(rest2.length, 0);
    assertSameBytes(gotBin, bin, "500 KB binary");
    // and inside a structure
    const [gotObj] = await ackAll(c.socket, "echo", [{ name: "blob", data: bin }], 10_000);
    assert.equal(gotObj.name, "blob");
    assertSameBytes(gotObj.data, bin, "500 KB binary in an object");
  });

  it("200 events without ack arrive in order", opts, async (t) => {
    // Sent in small chunks from the moment the socket connects: in the upgrade mode, when the
    // namespace connect completes before the upgrade (it often does not, on loopback), some are
    // sent while the transport is switched from polling to WebSocket.
    const c = open(t, ctx);
    const N = 200;
    c.socket.once("connect", async () => {
      for (let i = 0; i < N; i += 10) {
        for (let j = i; j < i + 10; j++) c.socket.emit("echo", j);
        await sleep(1);
      }
    });
    const got = await c.take("echo", N, { ms: 10_000 });
    assert.deepStrictEqual(
      got.map((args) => args[0]),
      Array.from({ length: N }, (_, i) => i),
      "echo events must arrive in the order sent",
    );
    assert.ok(got.every((args) => args.length === 1), "each echo has one argument");
    const [welcome] = await c.next("welcome");
    assert.deepStrictEqual(welcome, { id: c.socket.id, auth: {} });
    await assertTransport(c.socket.io, ctx.mode);
  });

  it("server->client ack: `ask` forwards the client's first answer to `question`", opts, async (t) => {
    const c = await connect(t, ctx);
    const questions = [];
    c.socket.on("question", (payload, ack) => {
      questions.push(payload);
      assert.equal(typeof ack, "function", "question expects an ack");
      if (payload === "ping") ack("pong");
      else ack({ answer: payload.n * 2, echoed: payload.bin }, "second answer is dropped", 3);
    });
    assert.deepStrictEqual(await ackAll(c.socket, "ask", ["ping"]), ["pong"]);
    const payload = { n: 21, bin: Buffer.from([1, 2, 3]), list: [null, true] };
    const got = await ackAll(c.socket, "ask", [payload]);
    assertSameArgs(got, [{ answer: 42, echoed: payload.bin }], "ack of ask: only the first answer");
    assertSameArgs(questions, ["ping", payload], "question payloads");
  });

  it("server->client ack: `ask` acks {error: timeout} after ~2 s without an answer", opts, async (t) => {
    const c = await connect(t, ctx);
    const questions = [];
    c.socket.on("question", (payload) => questions.push(payload)); // never answers
    const started = Date.now();
    const got = await ackAll(c.socket, "ask", [{ q: "silence" }], ASK_TIMEOUT_MS + WAIT_MS);
    const elapsed = Date.now() - started;
    assert.deepStrictEqual(got, [{ error: "timeout" }], "ack of an unanswered ask");
    assert.deepStrictEqual(questions, [{ q: "silence" }], "the question was asked");
    assert.ok(
      elapsed >= ASK_TIMEOUT_MS - 200 && elapsed < ASK_TIMEOUT_MS + 2_000,
      `the timeout ack came after ${elapsed} ms, expected about ${ASK_TIMEOUT_MS} ms`,
    );
    assert.ok(c.socket.connected, "still connected");
  });

  it("client-side ack timeout: an unknown event is never acknowledged", opts, async (t) => {
    const c = await connect(t, ctx);
    const started = Date.now();
    await assert.rejects(
      c.socket.timeout(500).emitWithAck("no-such-event", { x: 1 }),
      (err) => err instanceof Error && /timed out/.test(err.message),
    );
    assert.ok(Date.now() - started >= 450, "rejected by the client's timer");
    assert.ok(c.socket.connected, `the unknown event does not break the connection: ${c.state()}`);
    assert.deepStrictEqual(await c.socket.timeout(WAIT_MS).emitWithAck("echo", "still here"), "still here");
  });

  it("rooms: join and leave ack true, `rooms` acks the sorted list without the own id", opts, async (t) => {
    const c = await connect(t, ctx);
    const id = tag();
    const [zeta, alpha, mid, beta] = [`zeta-${id}`, `alpha-${id}`, `Mid-${id}`, `beta-${id}`];
    assert.deepStrictEqual(await ackAll(c.socket, "rooms"), [[]], "rooms of a new socket");
    for (const room of [zeta, alpha, mid, beta]) {
      assert.deepStrictEqual(await ackAll(c.socket, "join", [room]), [true], `join ${room}`);
    }
    assert.deepStrictEqual(await ackAll(c.socket, "rooms"), [[zeta, alpha, mid, beta].sort()], "sorted rooms");
    assert.deepStrictEqual(await ackAll(c.socket, "join", [alpha]), [true], "join a room again");
    assert.deepStrictEqual(await ackAll(c.socket, "leave", [beta]), [true], "leave");
    assert.deepStrictEqual(await ackAll(c.socket, "rooms"), [[zeta, alpha, mid].sort()], "rooms after leave");
    assert.deepStrictEqual(await ackAll(c.socket, "leave", [`never-joined-${id}`]), [true], "leave a room not joined");
    assert.deepStrictEqual(await ackAll(c.socket, "rooms"), [[zeta, alpha, mid].sort()], "rooms unchanged");
  });

  it("to-room reaches the members, the sender when it is one, and nobody else", opts, async (t) => {
    const [a, b, outsider] = await connectMany(t, ctx, 3);
    const room = `room-${tag()}`;
    const [ev1, ev2] = [`news-${tag()}`, `news-${tag()}`];
    for (const c of [a, b]) assert.deepStrictEqual(await ackAll(c.socket, "join", [room]), [true]);

    const p1 = { from: "member", n: 1, bin: Buffer.from([7, 7]) };
    a.socket.emit("to-room", room, ev1, p1);
    for (const c of [a, b]) assertSameArgs(await c.next(ev1), [p1], `${ev1} on a member`);

    const p2 = ["from outsider", 2];
    outsider.socket.emit("to-room", room, ev2, p2);
    for (const c of [a, b]) assertSameArgs(await c.next(ev2), [p2], `${ev2} on a member`);

    outsider.socket.emit("to-room", `empty-${tag()}`, ev1, "nobody");
    await sleep(QUIET_MS);
    for (const c of [a, b, outsider]) {
      c.assertNo(ev1, "exactly once, only to members");
      c.assertNo(ev2, "exactly once, only to members");
    }
  });

  it("broadcast reaches every other socket of / but not the sender", opts, async (t) => {
    const [a, b, c] = await connectMany(t, ctx, 3);
    const tenant = await connect(t, ctx, { nsp: `/tenant-bc${tag()}` });
    const ev = `shout-${tag()}`;
    const payload = { text: "to all but me", bin: Buffer.from("x"), nested: [1, { two: 2 }] };
    a.socket.emit("broadcast", ev, payload);
    for (const other of [b, c]) assertSameArgs(await other.next(ev), [payload], `${ev} on another socket`);
    await sleep(QUIET_MS);
    a.assertNo(ev, "the sender is excluded");
    for (const other of [b, c]) other.assertNo(ev, "exactly once");
    tenant.assertNo(ev, "another namespace");
  });

  it("burst: N `bcast` events to every socket of /", opts, async (t) => {
    const [a, b] = await connectMany(t, ctx, 2);
    const payload = { k: "v", i: 1, list: ["x", null] };
    a.socket.emit("burst", { n: 25, payload });
    for (const c of [a, b]) {
      const got = await c.take("bcast", 25);
      got.forEach((args, i) => assertSameArgs(args, [payload], `bcast #${i}`));
    }
    await sleep(100);
    for (const c of [a, b]) c.assertNo("bcast", "exactly N");
  });

  it("/private: the middleware refuses a missing or wrong token and admits let-me-in", opts, async (t) => {
    const none = open(t, ctx, { nsp: "/private" });
    const wrong = open(t, ctx, { nsp: "/private", auth: { token: "let-me-out" } });
    for (const [c, what] of [
      [none, "no auth"],
      [wrong, "wrong token"],
    ]) {
      const err = await c.connectError();
      assert.equal(err.message, "unauthorized", `connect_error message (${what})`);
      assert.deepStrictEqual(err.data, { reason: "bad token" }, `connect_error data (${what})`);
      assert.equal(c.socket.connected, false);
      c.assertNo("welcome");
    }
    const ok = await connect(t, ctx, { nsp: "/private", auth: { token: "let-me-in" } });
    assert.deepStrictEqual(ok.welcome, { id: ok.socket.id }, "welcome of /private");
    assert.notEqual(ok.socket.id, ok.socket.io.engine.id);
  });

  it("dynamic namespaces: /tenant-[a-z0-9]+ connect, others are refused", opts, async (t) => {
    const [x, y] = await Promise.all([
      connect(t, ctx, { nsp: "/tenant-abc1" }),
      connect(t, ctx, { nsp: "/tenant-abc1" }),
    ]);
    assert.deepStrictEqual(x.welcome, { nsp: "/tenant-abc1" });
    assert.deepStrictEqual(y.welcome, { nsp: "/tenant-abc1" }, "a second socket of an existing tenant");
    assert.notEqual(x.socket.id, y.socket.id);
    const refused = ["/nope", "/tenant-UPPER", "/tenant-", "/tenant-ab_c"].map((nsp) => open(t, ctx, { nsp }));
    for (const c of refused) {
      const err = await c.connectError();
      assert.equal(err.message, "Invalid namespace", `connect_error of ${c.socket.nsp}`);
      assert.equal(c.socket.connected, false);
    }
  });

  it("several namespaces multiplexed on one connection work independently", opts, async (t) => {
    const manager = openManager(t, ctx);
    const root = open(t, ctx, { manager, nsp: "/", auth: { who: "root" } });
    const tenant = open(t, ctx, { manager, nsp: "/tenant-x1" });
    const priv = open(t, ctx, { manager, nsp: "/private", auth: { token: "let-me-in" } });
    const nope = open(t, ctx, { manager, nsp: "/nope" });
    const [[rw], [tw], [pw]] = await Promise.all([root.next("welcome"), tenant.next("welcome"), priv.next("welcome")]);
    assert.deepStrictEqual(rw, { id: root.socket.id, auth: { who: "root" } });
    assert.deepStrictEqual(tw, { nsp: "/tenant-x1" });
    assert.deepStrictEqual(pw, { id: priv.socket.id });
    assert.equal((await nope.connectError()).message, "Invalid namespace");
    await assertTransport(manager, ctx.mode);

    const engine = manager.engine;
    const engineId = engine.id;
    for (const c of [root, tenant, priv]) {
      assert.equal(c.socket.io, manager, "same manager");
      assert.equal(c.socket.io.engine.id, engineId, "same engine");
    }
    const ids = [root.socket.id, tenant.socket.id, priv.socket.id, engineId];
    assert.equal(new Set(ids).size, ids.length, `distinct socket ids per namespace: ${ids}`);

    // the refusal of /nope left the others alone
    assert.deepStrictEqual(await ackAll(root.socket, "echo", ["via /", 1]), ["via /", 1]);
    // reconnect /tenant-x1 alone: / keeps working, the connection stays the same
    tenant.socket.disconnect();
    await sleep(50);
    assert.ok(root.socket.connected && priv.socket.connected, "the other namespaces stay connected");
    assert.deepStrictEqual(await ackAll(root.socket, "echo", [{ still: "fine" }]), [{ still: "fine" }]);
    tenant.socket.connect();
    assert.deepStrictEqual(await tenant.next("welcome"), [{ nsp: "/tenant-x1" }], "welcome after reconnecting the namespace");
    root.socket.emit("echo", "event on /");
    assert.deepStrictEqual(await root.next("echo"), ["event on /"]);
    assert.equal(manager.engine, engine, "still the same engine");
    assert.equal(manager.engine.id, engineId);
    tenant.assertNo("echo", "events of / stay on /");
    for (const c of [root, priv]) assert.deepEqual([...c.disconnects], [], `no disconnect on ${c.label}`);
    assert.deepEqual([...tenant.disconnects], ["io client disconnect"], "only its own disconnect");
  });

  it("disconnect-me: io server disconnect, no reconnection, the connection stays open", opts, async (t) => {
    const manager = openManager(t, ctx);
    const tenant = open(t, ctx, { manager, nsp: "/tenant-keep1" });
    const root = open(t, ctx, { manager, nsp: "/" });
    await Promise.all([tenant.next("welcome"), root.next("welcome")]);
    await assertTransport(manager, ctx.mode);
    const engine = manager.engine;
    const engineId = engine.id;

    root.socket.emit("disconnect-me");
    await root.until(() => root.disconnects.length > 0, `"disconnect" on /`, { allowDisconnect: true });
    assert.deepEqual([...root.disconnects], ["io server disconnect"], "disconnect reason");
    assert.equal(root.socket.active, false, "no automatic reconnection after a server disconnect");
    await sleep(QUIET_MS);
    assert.equal(root.socket.connected, false, "stays disconnected");
    assert.equal(root.connects, 1, "did not reconnect");
    assert.deepEqual([...tenant.disconnects], [], "the other namespace is not disconnected");
    assert.ok(tenant.socket.connected, "the other namespace stays connected");
    assert.equal(manager.engine, engine, "same engine");
    assert.equal(engine.readyState, "open", "the underlying connection stays open");

    // the connection still carries traffic: connect / again over it
    root.socket.connect();
    const [welcome] = await root.next("welcome");
    assert.deepStrictEqual(welcome, { id: root.socket.id, auth: {} });
    assert.deepStrictEqual(await ackAll(root.socket, "echo", ["after disconnect-me"]), ["after disconnect-me"]);
    assert.equal(manager.engine.id, engineId, "over the same connection");
    assert.deepEqual([...tenant.disconnects], []);
  });

  it("reconnects automatically after the client kills its transport", opts, async (t) => {
    const auth = { user: "r", n: 1 };
    const c = await connect(t, ctx, { auth });
    const manager = c.socket.io;
    const [oldId, oldEngine, oldEngineId] = [c.socket.id, manager.engine, manager.engine.id];
    const reconnected = once(manager, "reconnect", WAIT_MS, `"reconnect" (${c.label})`);
    manager.engine.close();
    await reconnected;
    const [welcome] = await c.next("welcome", { allowDisconnect: true });
    assert.equal(c.disconnects.length, 1, "one disconnect");
    assert.notEqual(c.disconnects[0], "io server disconnect");
    assert.ok(c.socket.connected, "connected again");
    assert.deepStrictEqual(welcome, { id: c.socket.id, auth }, "a new welcome, with the auth sent again");
    assert.notEqual(c.socket.id, oldId, "a new socket id");
    assert.notEqual(manager.engine, oldEngine, "a new engine");
    assert.notEqual(manager.engine.id, oldEngineId, "a new engine session");
    await assertTransport(manager, ctx.mode);
    assert.deepStrictEqual(await ackAll(c.socket, "echo", ["after reconnect", Buffer.from([1])]), [
      "after reconnect",
      Buffer.from([1]),
    ]);
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP routes, once per parser
// ---------------------------------------------------------------------------------------------

async function request(ctx, method, path, body, { raw = false } = {}) {
  const init = { method, signal: AbortSignal.timeout(WAIT_MS), headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = raw ? body : JSON.stringify(body);
  }
  const res = await fetch(`${ctx.base}${path}`, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function assertOk(ctx, method, path, body) {
  const res = await request(ctx, method, path, body);
  assert.equal(res.status, 200, `${method} ${path}: ${res.status} ${res.text}`);
  assert.deepStrictEqual(res.json, { ok: true }, `${method} ${path} body: ${res.text}`);
}

/** GET /sockets until it answers `expected` (earlier tests' sockets may still be closing). */
async function assertSockets(ctx, query, expected) {
  const deadline = Date.now() + 2_000;
  let last;
  for (;;) {
    last = await request(ctx, "GET", `/sockets${query}`);
    assert.equal(last.status, 200, `GET /sockets${query}: ${last.status} ${last.text}`);
    if (JSON.stringify(last.json) === JSON.stringify({ ids: expected }) || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.deepStrictEqual(last.json, { ids: expected }, `GET /sockets${query}: ${last.text}`);
}

function httpRoutes(ctx) {
  const opts = { timeout: TEST_TIMEOUT_MS };

  it("GET /health answers 200 ok", opts, async () => {
    const res = await request(ctx, "GET", "/health");
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
  });

  it("POST /emit without room reaches every socket of /", opts, async (t) => {
    const [a, b] = await connectMany(t, ctx, 2);
    const tenant = await connect(t, ctx, { nsp: "/tenant-http1" });
    const [ev1, ev2] = [`http-${tag()}`, `http-${tag()}`];
    const data = { msg: "hi", n: 1, f: 0.25, nested: { list: [1, null, "x", true] } };
    await assertOk(ctx, "POST", "/emit", { event: ev1, data });
    for (const c of [a, b]) assert.deepStrictEqual(await c.next(ev1), [data], `${ev1} on ${c.socket.id}`);
    await assertOk(ctx, "POST", "/emit", { event: ev2, data: "plain text" });
    for (const c of [a, b]) assert.deepStrictEqual(await c.next(ev2), ["plain text"]);
    await sleep(QUIET_MS);
    for (const c of [a, b]) c.assertNo(ev1, "exactly once");
    tenant.assertNo(ev1, "only the sockets of /");
  });

  it("POST /emit with room reaches only the room", opts, async (t) => {
    const [member, other] = await connectMany(t, ctx, 2);
    const room = `http-room-${tag()}`;
    assert.deepStrictEqual(await ackAll(member.socket, "join", [room]), [true]);
    const ev = `http-${tag()}`;
    await assertOk(ctx, "POST", "/emit", { room, event: ev, data: [1, "two"] });
    assert.deepStrictEqual(await member.next(ev), [[1, "two"]]);
    await sleep(QUIET_MS);
    other.assertNo(ev, "not a member of the room");
    member.assertNo(ev, "exactly once");
  });

  it("GET /sockets lists the sorted socket ids of a room, or of all of /", opts, async (t) => {
    const [a, b, c] = await connectMany(t, ctx, 3);
    await connect(t, ctx, { nsp: "/tenant-http2" }); // not a socket of /
    const room = `list room &é ${tag()}`; // needs URL decoding
    for (const m of [a, c]) assert.deepStrictEqual(await ackAll(m.socket, "join", [room]), [true]);
    const q = `?room=${encodeURIComponent(room)}`;
    await assertSockets(ctx, q, [a.socket.id, c.socket.id].sort());
    await assertSockets(ctx, `?room=nobody-${tag()}`, []);
    await assertSockets(ctx, "", [a, b, c].map((m) => m.socket.id).sort());
    // a socket's own id is a room too
    await assertSockets(ctx, `?room=${encodeURIComponent(b.socket.id)}`, [b.socket.id]);
    assert.deepStrictEqual(await ackAll(a.socket, "leave", [room]), [true]);
    await assertSockets(ctx, q, [c.socket.id]);
  });

  it("POST /disconnect with room disconnects only the room's sockets", opts, async (t) => {
    const [a, b, stay] = await connectMany(t, ctx, 3);
    const room = `doomed-${tag()}`;
    for (const m of [a, b]) assert.deepStrictEqual(await ackAll(m.socket, "join", [room]), [true]);
    await assertOk(ctx, "POST", "/disconnect", { room });
    for (const m of [a, b]) {
      await m.until(() => m.disconnects.length > 0, `"disconnect" on ${m.label}`, { allowDisconnect: true });
      assert.deepEqual([...m.disconnects], ["io server disconnect"]);
      assert.equal(m.socket.active, false, "no automatic reconnection");
    }
    await sleep(QUIET_MS);
    for (const m of [a, b]) assert.equal(m.connects, 1, "did not reconnect");
    assert.deepEqual([...stay.disconnects], [], "a socket outside the room stays");
    assert.deepStrictEqual(await ackAll(stay.socket, "echo", ["alive"]), ["alive"]);
    await assertSockets(ctx, `?room=${room}`, []);
    await assertSockets(ctx, "", [stay.socket.id]);
  });

  it("POST /disconnect without room disconnects every socket of /", opts, async (t) => {
    const [a, b] = await connectMany(t, ctx, 2);
    const tenant = await connect(t, ctx, { nsp: "/tenant-http3" });
    await assertOk(ctx, "POST", "/disconnect", {});
    for (const m of [a, b]) {
      await m.until(() => m.disconnects.length > 0, `"disconnect" on ${m.label}`, { allowDisconnect: true });
      assert.deepEqual([...m.disconnects], ["io server disconnect"]);
    }
    await sleep(QUIET_MS);
    assert.deepEqual([...tenant.disconnects], [], "sockets of other namespaces stay");
    assert.ok(tenant.socket.connected);
    await assertSockets(ctx, "", []);
  });

  it("bad JSON or a missing event: 400 with a JSON body", opts, async () => {
    const cases = [
      ["/emit", "{not json"],
      ["/emit", ""],
      ["/emit", '{"event": "x", "data": '],
      ["/emit", JSON.stringify({ data: 1 })],
      ["/emit", JSON.stringify({ room: "r", data: { a: 1 } })],
      ["/emit", "{}"],
      ["/disconnect", "{oops"],
    ];
    for (const [path, body] of cases) {
      const res = await request(ctx, "POST", path, body, { raw: true });
      const what = `POST ${path} ${JSON.stringify(body)}`;
      assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/, `${what}: content-type`);
      assert.notEqual(res.json, undefined, `${what}: the body is JSON: ${res.text}`);
    }
    const health = await request(ctx, "GET", "/health");
    assert.equal(health.status, 200, "the server is still up");
  });

  it("the Socket.IO endpoint allows any origin (CORS)", opts, async () => {
    const origin = "http://example.test:1234";
    const res = await fetch(`${ctx.base}/socket.io/?EIO=4&transport=polling`, {
      headers: { origin },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    const body = await res.text();
    assert.equal(res.status, 200, `polling handshake: ${res.status} ${body}`);
    const allowed = res.headers.get("access-control-allow-origin");
    assert.ok(allowed === "*" || allowed === origin, `access-control-allow-origin: ${allowed}`);
    // close the session just opened
    const sid = JSON.parse(body.slice(1)).sid;
    await fetch(`${ctx.base}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, {
      method: "POST",
      body: "1",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      signal: AbortSignal.timeout(WAIT_MS),
    });

    const pre = await fetch(`${ctx.base}/socket.io/?EIO=4&transport=polling`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    await pre.text();
    assert.ok(pre.status >= 200 && pre.status < 300, `preflight status ${pre.status}`);
    const preAllowed = pre.headers.get("access-control-allow-origin");
    assert.ok(preAllowed === "*" || preAllowed === origin, `preflight access-control-allow-origin: ${preAllowed}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Test tree
// ---------------------------------------------------------------------------------------------

for (const parser of PARSERS) {
  describe(`interop, ${parser.name}, driven by socket.io-client`, () => {
    let server;
    const ctx = { parser, port: 0, base: "" };

    before(async () => {
      server = startServer(parser.env);
      ctx.port = await server.ready;
      ctx.base = `http://${HOST}:${ctx.port}`;
    });

    after(async () => {
      await server?.stop();
    });

    for (const mode of MODES) {
      describe(mode.name, () => {
        scenarios(Object.assign(Object.create(ctx), { mode }));
      });
    }

    describe("HTTP routes (websocket clients)", () => {
      httpRoutes(Object.assign(Object.create(ctx), { mode: WEBSOCKET_MODE }));
    });

    it("exits cleanly on SIGTERM with clients connected", { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const c = await connect(t, Object.assign(Object.create(ctx), { mode: WEBSOCKET_MODE }));
      const { code, signal } = await server.stop("SIGTERM");
      assert.equal(signal, null, `the server died of ${signal} instead of exiting`);
      assert.equal(code, 0, "exit code");
      await c.until(() => c.disconnects.length > 0, "the client sees the disconnect", { allowDisconnect: true });
    });
  });
}

describe("interop with SIO_PATH", () => {
  let server;
  const ctx = { parser: PARSERS[0], mode: WEBSOCKET_MODE, port: 0, base: "" };
  const path = "/custom-sio/";

  before(async () => {
    server = startServer({ SIO_PATH: path });
    ctx.port = await server.ready;
    ctx.base = `http://${HOST}:${ctx.port}`;
  });

  after(async () => {
    await server?.stop();
  });

  it("serves Socket.IO at $SIO_PATH only", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    for (const mode of [MODES[0], MODES[1]]) {
      const socket = io(ctx.base, { ...managerOptions(ctx, mode), path });
      const c = new Client(socket, `socket at ${path} (${mode.name})`);
      t.after(() => c.close());
      const [welcome] = await c.next("welcome");
      assert.deepStrictEqual(welcome, { id: socket.id, auth: {} });
    }
    const wrong = io(ctx.base, { ...managerOptions(ctx, WEBSOCKET_MODE), reconnection: false });
    const w = new Client(wrong, "socket at the default path");
    t.after(() => w.close());
    await w.connectError();
    assert.equal(wrong.connected, false);
    const health = await request(ctx, "GET", "/health");
    assert.equal(health.status, 200);
  });
});

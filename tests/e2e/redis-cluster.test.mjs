// End-to-end test of the Redis adapter (crates/ferrio-redis) in a mixed cluster: two `interop`
// servers (docs/examples.md, section 2, with REDIS_URL) and one Node.js server running the npm
// packages `socket.io` 4.8 + `@socket.io/redis-adapter` 8.3 (tests/e2e/node-cluster-server.mjs),
// all on a private `redis-server` that this file starts on a free port and stops at the end
// (pub/sub channels ignore database numbers, so a shared Redis would mix tests' traffic).
// Clients are the official `socket.io-client`, websocket-only and polling-only on every node;
// `@socket.io/redis-emitter` publishes from this process on a Redis client of its own.
//
// Run from the repository root:   node --test tests/e2e/redis-cluster.test.mjs
// Needs:                          redis-server on the PATH (or $REDIS_SERVER_BIN),
//                                 `npm ci` in tests/e2e, `cargo build -p interop`
// Binary under test:              $INTEROP_BIN, default <repo>/target/debug/interop
// Set E2E_SERVER_LOG=1 to forward the servers' stderr to this process's stderr.
//
// The cases share six clients (two per node) and one cluster; each uses its own event and room
// names. The disconnect case uses clients of its own.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { io as connectClient } from "socket.io-client";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { startServer, startRedis } from "./server.mjs";
import { tag, waitUntil, http, ok } from "./cluster.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BIN = process.env.INTEROP_BIN || DEFAULT_BIN;
const NODE_SERVER = fileURLToPath(new URL("./node-cluster-server.mjs", import.meta.url));
const HOST = "127.0.0.1";
const WAIT_MS = 5_000; // upper bound for any single wait inside a test
const QUIET_MS = 300; // how long to wait when checking that something does NOT arrive
const TEST_TIMEOUT_MS = 15_000; // upper bound for a whole test
const CLUSTER_TIMEOUT_MS = 10_000; // upper bound for the cluster to form (3 subscribers)

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** What an argument looks like after a round trip: every binary view becomes a Node Buffer. */
function asReceived(x) {
  if (Buffer.isBuffer(x)) return x;
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (Array.isArray(x)) return x.map(asReceived);
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, asReceived(v)]));
  }
  return x;
}

function show(x) {
  if (Buffer.isBuffer(x)) return `<Buffer ${x.toString("hex").slice(0, 32)}… ${x.length} bytes>`;
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) return `<${x.constructor.name} ${x.byteLength} bytes>`;
  if (Array.isArray(x)) return `[${x.map(show).join(", ")}]`;
  if (x && typeof x === "object") return `{${Object.entries(x).map(([k, v]) => `${k}: ${show(v)}`).join(", ")}}`;
  return JSON.stringify(x);
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/** A socket.io-client Socket that records everything it receives from its creation on. */
class Client {
  constructor(node, transport) {
    this.node = node;
    this.transport = transport;
    this.label = `${node.name}/${transport}`;
    this.socket = connectClient(node.url, {
      transports: [transport],
      forceNew: true,
      reconnection: false,
    });
    this.inbox = []; // [{ event, args }]
    this.connectErrors = [];
    this.disconnects = []; // reasons
    this.socket.onAny((event, ...args) => this.inbox.push({ event, args }));
    this.socket.on("connect_error", (err) => this.connectErrors.push(err.message));
    this.socket.on("disconnect", (reason) => this.disconnects.push(reason));
  }

  get id() {
    return this.socket.id;
  }

  state() {
    return (
      `${this.label}: connected=${this.socket.connected} ` +
      `connect_errors=[${this.connectErrors.join(", ")}] disconnects=[${this.disconnects.join(", ")}] ` +
      `inbox=[${this.inbox.map((m) => `${m.event}${show(m.args)}`).join(", ").slice(0, 400)}]`
    );
  }

  /** Connects; resolves once the server's `welcome` (with this socket's id) has arrived. */
  async ready() {
    await waitUntil(
      () => this.connectErrors.length > 0 || this.received("welcome").length > 0,
      `${this.label} to connect`,
      WAIT_MS,
      () => this.state(),
    );
    assert.equal(this.connectErrors.length, 0, this.state());
    const [welcome] = this.received("welcome")[0];
    assert.equal(welcome.id, this.id, `${this.label}: welcome carries the socket id`);
    return this;
  }

  received(event) {
    return this.inbox.filter((m) => m.event === event).map((m) => m.args);
  }

  /** Waits for the first `event`; resolves with its arguments. */
  async expect(event, ms = WAIT_MS) {
    await waitUntil(() => this.received(event).length > 0, `"${event}" on ${this.label}`, ms, () => this.state());
    return this.received(event)[0];
  }

  /** Emits `event` with `args` and an ack; resolves with the ack's first argument. */
  ack(event, ...args) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(WAIT_MS).emit(event, ...args, (err, value) => {
        if (err) reject(new Error(`no ack for "${event}" on ${this.label}: ${this.state()}`));
        else resolve(value);
      });
    });
  }

  async join(room) {
    assert.equal(await this.ack("join", room), true, `${this.label} joins ${room}`);
  }

  close() {
    this.socket.disconnect();
  }
}

/**
 * Waits until each of `receivers` got `event` once with exactly `expected` as its arguments,
 * then a quiet window, and checks that nobody got it twice and `silent` got nothing.
 */
async function deliveredOnlyTo(event, expected, receivers, silent) {
  await Promise.all(receivers.map((c) => c.expect(event)));
  await sleep(QUIET_MS);
  for (const c of receivers) {
    const got = c.received(event);
    assert.equal(got.length, 1, `${c.label} got "${event}" ${got.length} times`);
    assert.deepStrictEqual(
      asReceived(got[0]),
      asReceived(expected),
      `${c.label}: "${event}" arrived as ${show(got[0])}, expected ${show(expected)}`,
    );
  }
  for (const c of silent) {
    assert.equal(c.received(event).length, 0, `${c.label} (not a target) got "${event}": ${c.state()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

describe("Redis cluster: two interop servers and a Node.js socket.io server", () => {
  let redis;
  let redisUrl;
  const processes = [];
  const nodes = {}; // a, b: interop; n: Node.js
  const all = []; // the six shared clients
  let c; // the shared clients by name: aWs, aPoll, bWs, bPoll, nWs, nPoll

  before(async () => {
    redis = startRedis();
    const redisPort = await redis.ready;
    redisUrl = `redis://${HOST}:${redisPort}`;

    const env = { ...process.env, REDIS_URL: redisUrl };
    for (const name of ["PARSER", "SIO_PATH", "RECOVERY", "REDIS_STREAMS", "PING_INTERVAL_MS", "PING_TIMEOUT_MS"]) delete env[name];
    const specs = [
      { name: "a", kind: "rust", bin: BIN, args: [], hint: "build it with `cargo build -p interop` or point INTEROP_BIN at it" },
      { name: "b", kind: "rust", bin: BIN, args: [], hint: "build it with `cargo build -p interop` or point INTEROP_BIN at it" },
      { name: "n", kind: "node", bin: process.execPath, args: [NODE_SERVER], hint: "run `npm ci` in tests/e2e" },
    ];
    const started = specs.map((spec) => {
      const proc = startServer({ ...spec, env, label: `${spec.kind} node ${spec.name} (${spec.bin})` });
      processes.push(proc);
      return { spec, proc };
    });
    for (const { spec, proc } of started) {
      const port = await proc.ready;
      nodes[spec.name] = { name: `${spec.kind}-${spec.name}`, kind: spec.kind, url: `http://${HOST}:${port}`, proc };
    }

    // Every node subscribed: each counts 3 subscribers on the request channel.
    for (const node of Object.values(nodes)) {
      let last;
      await waitUntil(
        async () => {
          last = await http(node, "GET", "/cluster");
          return last.body?.servers === 3;
        },
        `${node.name} to see 3 servers`,
        CLUSTER_TIMEOUT_MS,
        () => JSON.stringify(last?.body),
      );
    }

    c = {
      aWs: new Client(nodes.a, "websocket"),
      aPoll: new Client(nodes.a, "polling"),
      bWs: new Client(nodes.b, "websocket"),
      bPoll: new Client(nodes.b, "polling"),
      nWs: new Client(nodes.n, "websocket"),
      nPoll: new Client(nodes.n, "polling"),
    };
    all.push(...Object.values(c));
    await Promise.all(all.map((client) => client.ready()));
  });

  after(async () => {
    for (const client of all) client.close();
    await Promise.all(processes.map((proc) => proc.stop()));
    await redis?.stop();
  });

  it("1. a client's broadcast from any node reaches every other client of the cluster, not the sender", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const sender of [c.aWs, c.bPoll, c.nWs, c.nPoll]) {
      const event = `bc-${tag()}`;
      const payload = { from: sender.label, n: 42, list: ["x", null, true] };
      sender.socket.emit("broadcast", event, payload);
      await deliveredOnlyTo(event, [payload], all.filter((x) => x !== sender), [sender]);
    }
  });

  it("2. a room emit crosses nodes and reaches only the room's members", { timeout: TEST_TIMEOUT_MS }, async () => {
    const room = `room-${tag()}`;
    const members = [c.aPoll, c.bWs, c.nPoll];
    const others = [c.aWs, c.bPoll, c.nWs];
    await Promise.all(members.map((m) => m.join(room)));
    // from a non-member on a Rust node, from a non-member on the Node node, from a member
    for (const sender of [c.aWs, c.nWs, c.bWs]) {
      const event = `room-ev-${tag()}`;
      const payload = { from: sender.label };
      sender.socket.emit("to-room", room, event, payload);
      await deliveredOnlyTo(event, [payload], members, others);
    }
  });

  it("3. POST /emit with a room on one node reaches the members on the other nodes", { timeout: TEST_TIMEOUT_MS }, async () => {
    const room = `http-${tag()}`;
    const members = [c.aWs, c.bPoll, c.nWs];
    const others = [c.aPoll, c.bWs, c.nPoll];
    await Promise.all(members.map((m) => m.join(room)));
    for (const node of [nodes.a, nodes.n]) {
      const event = `http-ev-${tag()}`;
      const data = { via: node.name, deep: { a: [1, 2, 3] } };
      assert.deepStrictEqual(await ok(node, "POST", "/emit", { room, event, data }), { ok: true });
      await deliveredOnlyTo(event, [data], members, others);
    }
  });

  it("4. fetching sockets sees the whole cluster, from a Rust node and from the Node.js node", { timeout: TEST_TIMEOUT_MS }, async () => {
    const everyone = all.map((x) => x.id).sort();
    for (const node of [nodes.a, nodes.b, nodes.n]) {
      assert.deepStrictEqual((await ok(node, "GET", "/sockets")).ids, everyone, `GET /sockets on ${node.name}`);
    }
    const room = `fetch-${tag()}`;
    const members = [c.aPoll, c.bWs, c.nWs];
    await Promise.all(members.map((m) => m.join(room)));
    const memberIds = members.map((x) => x.id).sort();
    for (const node of [nodes.a, nodes.b, nodes.n]) {
      const { ids } = await ok(node, "GET", `/sockets?room=${encodeURIComponent(room)}`);
      assert.deepStrictEqual(ids, memberIds, `GET /sockets?room= on ${node.name}`);
    }
    const { ids } = await ok(nodes.a, "GET", `/sockets?room=nobody-${tag()}`);
    assert.deepStrictEqual(ids, []);
  });

  it("5. POST /disconnect with a room disconnects the members on every node, and only them", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const own = [];
    t.after(() => own.forEach((x) => x.close()));
    const make = (node, transport) => {
      const client = new Client(node, transport);
      own.push(client);
      return client;
    };
    // from a Rust node, then from the Node.js node
    const rounds = [
      {
        from: nodes.a,
        members: [make(nodes.a, "websocket"), make(nodes.b, "polling"), make(nodes.n, "websocket")],
        others: [make(nodes.b, "websocket"), make(nodes.n, "polling")],
      },
      {
        from: nodes.n,
        members: [make(nodes.a, "polling"), make(nodes.b, "websocket")],
        others: [make(nodes.a, "websocket")],
      },
    ];
    await Promise.all(own.map((x) => x.ready()));
    for (const { from, members, others } of rounds) {
      const room = `dc-${tag()}`;
      await Promise.all(members.map((m) => m.join(room)));
      assert.deepStrictEqual(await ok(from, "POST", "/disconnect", { room }), { ok: true });
      for (const m of members) {
        await waitUntil(() => m.disconnects.length > 0, `${m.label} to be disconnected`, WAIT_MS, () => m.state());
        assert.deepStrictEqual(m.disconnects, ["io server disconnect"], m.label);
      }
      await sleep(QUIET_MS);
      for (const o of [...others, ...all]) {
        assert.equal(o.socket.connected, true, `${o.label} (not a member) stays connected: ${o.state()}`);
        assert.deepStrictEqual(o.disconnects, [], o.label);
      }
      for (const o of others) assert.deepStrictEqual(await o.ack("echo", "still here"), "still here");
      const { ids } = await ok(nodes.b, "GET", `/sockets?room=${encodeURIComponent(room)}`);
      assert.deepStrictEqual(ids, [], `no member of ${room} is left`);
    }
  });

  it("6. binary nested in an object crosses intact between Rust and Node.js nodes, both ways", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const sender of [c.aWs, c.bPoll, c.nPoll, c.nWs]) {
      const event = `bin-${tag()}`;
      const payload = {
        from: sender.label,
        blob: randomBytes(300),
        nested: { list: [1, Buffer.from([0, 255, 0, 128]), "text"], empty: Buffer.alloc(0) },
      };
      sender.socket.emit("broadcast", event, payload);
      await deliveredOnlyTo(event, [payload], all.filter((x) => x !== sender), [sender]);
      for (const receiver of all.filter((x) => x !== sender)) {
        const [got] = receiver.received(event)[0];
        assert.ok(
          Buffer.isBuffer(asReceived(got.blob)) && !Buffer.isBuffer(got.from),
          `${receiver.label}: the blob is binary, the label is not`,
        );
      }
    }
  });

  it("7. a server-side emit with an ack is answered across Rust and Node.js nodes, both ways", { timeout: TEST_TIMEOUT_MS }, async () => {
    const byServer = (a, b) => a.server.localeCompare(b.server);
    const fromRust = { n: tag(), list: [1, "two"] };
    const rust = await ok(nodes.a, "POST", "/server-emit", { event: "ping", data: fromRust });
    assert.deepStrictEqual(
      [...rust.responses].sort(byServer),
      [{ pong: fromRust, server: "ferrio" }, { pong: fromRust, server: "node" }],
      "the other Rust node and the Node.js node answer a Rust node",
    );
    const fromNode = { n: tag() };
    const node = await ok(nodes.n, "POST", "/server-emit", { event: "ping", data: fromNode });
    assert.deepStrictEqual(
      node.responses,
      [{ pong: fromNode, server: "ferrio" }, { pong: fromNode, server: "ferrio" }],
      "both Rust nodes answer the Node.js node's serverSideEmit",
    );
  });

  it("8. @socket.io/redis-emitter reaches the clients of every node, to all and to a room", { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const redisClient = createClient({ url: redisUrl });
    redisClient.on("error", () => {});
    await redisClient.connect();
    t.after(() => redisClient.quit());
    const emitter = new Emitter(redisClient);

    const event = `emitter-${tag()}`;
    const payload = { hello: "everyone", bin: Buffer.from("bytes from the emitter") };
    emitter.emit(event, payload, 7);
    await deliveredOnlyTo(event, [payload, 7], all, []);

    const room = `emitter-room-${tag()}`;
    const members = [c.aWs, c.bWs, c.nPoll];
    const others = [c.aPoll, c.bPoll, c.nWs];
    await Promise.all(members.map((m) => m.join(room)));
    const roomEvent = `emitter-to-${tag()}`;
    emitter.to(room).emit(roomEvent, { to: room });
    await deliveredOnlyTo(roomEvent, [{ to: room }], members, others);
  });

  it("9. GET /cluster on a Rust node reports 3 servers and a healthy adapter", { timeout: TEST_TIMEOUT_MS }, async () => {
    const a = await ok(nodes.a, "GET", "/cluster");
    const b = await ok(nodes.b, "GET", "/cluster");
    for (const [name, report] of [["a", a], ["b", b]]) {
      assert.equal(report.servers, 3, `${name}: ${JSON.stringify(report)}`);
      assert.equal(report.redis?.connected, true, `${name}: ${JSON.stringify(report)}`);
      assert.equal(report.redis.malformed, 0, `${name}: every message from the cluster decoded: ${JSON.stringify(report)}`);
      assert.equal(report.redis.unpublished, 0, `${name}: ${JSON.stringify(report)}`);
      // Redis never went away: a reconnection would mean the adapter dropped its connection
      // on its own (and missed what was published meanwhile).
      assert.equal(report.redis.reconnects, 0, `${name}: ${JSON.stringify(report)}`);
      assert.ok(report.redis.published > 0 && report.redis.received > 0, `${name}: ${JSON.stringify(report)}`);
    }
    assert.notEqual(a.redis.uid, b.redis.uid, "each Rust node has its own uid");
    assert.equal((await ok(nodes.n, "GET", "/cluster")).servers, 3);
  });
});

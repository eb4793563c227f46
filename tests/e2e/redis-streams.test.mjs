// End-to-end test of the Redis Streams adapter (crates/ferrio-redis/src/streams.rs) in a mixed
// cluster with connection state recovery: two `interop` servers (docs/examples.md, section 2,
// with REDIS_URL, REDIS_STREAMS=1 and RECOVERY=1) and one Node.js server running the npm
// packages `socket.io` 4.8 + `@socket.io/redis-streams-adapter` 0.3 with
// `connectionStateRecovery: { maxDisconnectionDuration: 120000 }`
// (tests/e2e/node-cluster-server.mjs with REDIS_STREAMS=1 RECOVERY=1), all on a private
// `redis-server` that this file starts on a free port and stops at the end.
//
// Run from the repository root:   node --test tests/e2e/redis-streams.test.mjs
// Needs:                          redis-server on the PATH (or $REDIS_SERVER_BIN),
//                                 `npm ci` in tests/e2e, `cargo build -p interop`
// Binary under test:              $INTEROP_BIN, default <repo>/target/debug/interop
// Set E2E_SERVER_LOG=1 to forward the servers' stderr to this process's stderr.
//
// Clients are the official `socket.io-client` over WebSocket. A client is cut with
// `socket.io.engine.close()` (the server sees a transport close and keeps its session in Redis
// under `sio:session:<pid>`). To come back on another server, a new client is created against
// that server with `autoConnect: false` and given the old socket's `_pid` and `_lastOffset`
// (the two fields socket.io-client puts into its CONNECT packet to ask for recovery) before
// `connect()`.
//
// The events a cut client misses come from several servers. Their order is the order of the
// stream, so after each one the test waits until it is in the stream (it reads the stream
// with a Redis client of its own) before sending the next: the expected order is then the
// order in which they were sent.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { io as connectClient } from "socket.io-client";
import { createClient } from "redis";
import { startServer, startRedis } from "./server.mjs";
import { tag, waitUntil, http, ok } from "./cluster.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BIN = process.env.INTEROP_BIN || DEFAULT_BIN;
const NODE_SERVER = fileURLToPath(new URL("./node-cluster-server.mjs", import.meta.url));
const HOST = "127.0.0.1";
const STREAM = "socket.io";
const SESSION_PREFIX = "sio:session:";
const WAIT_MS = 5_000; // upper bound for any single wait inside a test
const QUIET_MS = 300; // how long to wait when checking that something does NOT arrive
const TEST_TIMEOUT_MS = 20_000; // upper bound for a whole test
const CLUSTER_TIMEOUT_MS = 10_000; // upper bound for the cluster to form (3 subscribers)
const OFFSET = /^\d+-\d+$/; // a stream entry id

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Whether stream entry id `x` comes before `y` ("<ms>-<seq>"). */
function entryIdLess(x, y) {
  const [xm, xs] = x.split("-").map(BigInt);
  const [ym, ys] = y.split("-").map(BigInt);
  return xm < ym || (xm === ym && xs < ys);
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/** A socket.io-client Socket (WebSocket only) that records everything it receives. */
class Client {
  /** `from`: a cut Client whose pid and offset this one presents to recover. */
  constructor(node, from = null) {
    this.node = node;
    this.label = `${node.name}${from ? ` (was ${from.label})` : ""}`;
    this.socket = connectClient(node.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      autoConnect: false,
    });
    if (from) {
      this.socket._pid = from.socket._pid;
      this.socket._lastOffset = from.socket._lastOffset;
    }
    this.inbox = []; // [{ event, args }]
    this.connectErrors = [];
    this.disconnects = []; // reasons
    this.socket.onAny((event, ...args) => this.inbox.push({ event, args }));
    this.socket.on("connect_error", (err) => this.connectErrors.push(err.message));
    this.socket.on("disconnect", (reason) => this.disconnects.push(reason));
    this.socket.connect();
  }

  get id() {
    return this.socket.id;
  }

  state() {
    const inbox = this.inbox.map((m) => `${m.event}${JSON.stringify(m.args)}`).join(", ");
    return (
      `${this.label}: connected=${this.socket.connected} recovered=${this.socket.recovered} ` +
      `connect_errors=[${this.connectErrors.join(", ")}] disconnects=[${this.disconnects.join(", ")}] ` +
      `inbox=[${inbox.slice(0, 600)}]`
    );
  }

  /** Resolves once connected (a `connect_error` fails it). */
  async ready() {
    await waitUntil(
      () => this.connectErrors.length > 0 || this.socket.connected,
      `${this.label} to connect`,
      WAIT_MS,
      () => this.state(),
    );
    assert.equal(this.connectErrors.length, 0, this.state());
    return this;
  }

  received(event) {
    return this.inbox.filter((m) => m.event === event).map((m) => m.args);
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

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

describe("Redis Streams cluster with recovery: two interop servers and a Node.js socket.io server", () => {
  let redis;
  let redisUrl;
  let store; // this test's own Redis client (reads the stream and the session keys)
  const processes = [];
  const nodes = {}; // a, b: interop; n: Node.js
  const clients = [];

  /** A connected client on `node`; closed in `after`. */
  const connect = async (node, from) => {
    const client = new Client(node, from);
    clients.push(client);
    return client.ready();
  };

  before(async () => {
    redis = startRedis();
    const redisPort = await redis.ready;
    redisUrl = `redis://${HOST}:${redisPort}`;
    store = createClient({ url: redisUrl });
    store.on("error", () => {});
    await store.connect();

    const env = { ...process.env, REDIS_URL: redisUrl, REDIS_STREAMS: "1", RECOVERY: "1" };
    for (const name of ["PARSER", "SIO_PATH", "PING_INTERVAL_MS", "PING_TIMEOUT_MS"]) delete env[name];
    const rustHint = "build it with `cargo build -p interop` or point INTEROP_BIN at it";
    const specs = [
      { name: "a", kind: "rust", bin: BIN, args: [], hint: rustHint },
      { name: "b", kind: "rust", bin: BIN, args: [], hint: rustHint },
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

    // Every node subscribed: each counts 3 servers.
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
  });

  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(processes.map((proc) => proc.stop()));
    await store?.quit().catch(() => {});
    await redis?.stop();
  });

  /** Resolves once an entry of the stream carries `marker` in its data. */
  const inStream = (marker) =>
    waitUntil(
      async () => {
        const entries = await store.xRevRange(STREAM, "+", "-", { COUNT: 50 });
        return entries.some((e) => String(e.message.data ?? "").includes(marker));
      },
      `an entry with ${marker} in the stream`,
    );

  /** Resolves once the session of `client` (cut) is in Redis and no node lists its socket. */
  const sessionStored = async (client, id) => {
    const key = `${SESSION_PREFIX}${client.socket._pid}`;
    await waitUntil(async () => (await store.exists(key)) === 1, `${key} in Redis`, WAIT_MS, () => client.state());
    const alive = Object.values(nodes).find((node) => node.proc.stopped !== true);
    await waitUntil(
      async () => !(await ok(alive, "GET", "/sockets")).ids.includes(id),
      `the cluster to lose ${id}`,
    );
  };

  /**
   * `client` on `fromNode` joins a room and gets one event (so it has an offset), is cut, and
   * misses events sent by `senders` ({ node } for POST /emit, { client } for a client's
   * `broadcast`/`to-room`), to its id, its room and everyone; then it comes back on `toNode`.
   * `beforeReturn` runs between the cut (session stored) and the missed events.
   */
  async function recoveryRound({ fromNode, toNode, senders, beforeReturn = async () => {} }) {
    const k = tag();
    const room = `rec-${k}`;
    const event = `seq-${k}`;
    const client = await connect(fromNode);
    await client.join(room);
    await ok(fromNode, "POST", "/emit", { room: client.id, event, data: { n: -1, m: `${k}:-1` } });
    await waitUntil(() => client.received(event).length === 1, `the first ${event}`, WAIT_MS, () => client.state());
    const [first] = client.received(event);
    assert.equal(first.length, 2, `an offset follows the payload: ${JSON.stringify(first)}`);
    assert.match(first[1], OFFSET, "the offset is a stream entry id");
    assert.equal(client.socket._lastOffset, first[1]);
    assert.equal(client.socket.recovered, false);
    const oldId = client.id;

    client.socket.io.engine.close();
    await waitUntil(() => client.disconnects.length > 0, `${client.label} to see the cut`);
    await sessionStored(client, oldId);
    await beforeReturn();

    const expected = [];
    let n = 0;
    for (const sender of senders) {
      for (const to of ["id", "room", "all"]) {
        const data = { n, m: `${k}:${n}` };
        if (sender.node) {
          const body = { event, data };
          if (to === "id") body.room = oldId;
          if (to === "room") body.room = room;
          await ok(sender.node, "POST", "/emit", body);
        } else if (to === "room") {
          sender.client.socket.emit("to-room", room, event, data);
        } else if (to === "all") {
          sender.client.socket.emit("broadcast", event, data);
        } else {
          continue; // a client cannot address another socket's id through interop's contract
        }
        await inStream(`"${k}:${n}"`);
        expected.push(n);
        n += 1;
      }
    }

    const back = await connect(toNode, client);
    assert.equal(back.socket.recovered, true, `recovered on ${toNode.name}: ${back.state()}`);
    assert.equal(back.id, oldId, "the old id");
    await waitUntil(() => back.received(event).length >= expected.length, "the missed events", WAIT_MS, () => back.state());
    await sleep(QUIET_MS); // nothing more arrives
    const got = back.received(event);
    assert.deepStrictEqual(
      got.map((args) => args[0]),
      expected.map((m) => ({ n: m, m: `${k}:${m}` })),
      `${back.label}: the missed events once, in order`,
    );
    // Each with its entry id as offset, after the one the client had and increasing.
    let previous = first[1];
    for (const args of got) {
      assert.match(String(args[1]), OFFSET, `an offset on ${JSON.stringify(args)}`);
      assert.ok(entryIdLess(previous, args[1]), `${args[1]} comes after ${previous}`);
      previous = args[1];
    }
    assert.deepStrictEqual(await back.ack("rooms"), [room], "its room");
    // The cluster knows it in its room again, and it gets live events with fresh offsets.
    const { ids } = await ok(toNode, "GET", `/sockets?room=${encodeURIComponent(room)}`);
    assert.deepStrictEqual(ids, [oldId]);
    const live = { n: "live", m: k };
    await ok(senders.find((s) => s.node)?.node ?? toNode, "POST", "/emit", { room, event, data: live });
    await waitUntil(() => back.received(event).length === expected.length + 1, "a live event", WAIT_MS, () => back.state());
    assert.deepStrictEqual(back.received(event).at(-1)[0], live);
    return back;
  }

  it("1. broadcasts cross all three nodes both ways (same offset everywhere); room emits reach only members", { timeout: TEST_TIMEOUT_MS }, async () => {
    const c = {
      a1: await connect(nodes.a),
      a2: await connect(nodes.a),
      b1: await connect(nodes.b),
      b2: await connect(nodes.b),
      n1: await connect(nodes.n),
      n2: await connect(nodes.n),
    };
    const all = Object.values(c);

    const delivered = async (event, payload, receivers, silent) => {
      await waitUntil(
        () => receivers.every((r) => r.received(event).length > 0),
        `"${event}" on ${receivers.map((r) => r.label).join(", ")}`,
        WAIT_MS,
        () => receivers.map((r) => r.state()).join("\n"),
      );
      await sleep(QUIET_MS);
      const offsets = new Set();
      for (const r of receivers) {
        const got = r.received(event);
        assert.equal(got.length, 1, `${r.label} got "${event}" ${got.length} times`);
        assert.deepStrictEqual(got[0][0], payload, `${r.label}: the payload`);
        assert.equal(got[0].length, 2, `${r.label}: the payload, then the offset: ${JSON.stringify(got[0])}`);
        assert.match(got[0][1], OFFSET);
        offsets.add(got[0][1]);
      }
      assert.equal(offsets.size, 1, `one offset (the entry id) on every node: ${[...offsets].join(", ")}`);
      for (const s of silent) assert.equal(s.received(event).length, 0, `${s.label} (not a target) got "${event}"`);
    };

    for (const sender of [c.a1, c.b2, c.n1]) {
      const event = `bc-${tag()}`;
      const payload = { from: sender.label, list: [1, "two", null] };
      sender.socket.emit("broadcast", event, payload);
      await delivered(event, payload, all.filter((x) => x !== sender), [sender]);
    }

    const room = `room-${tag()}`;
    const members = [c.a2, c.b1, c.n2];
    const others = [c.a1, c.b2, c.n1];
    await Promise.all(members.map((m) => m.join(room)));
    // from a non-member on a Rust node, from a non-member on the Node.js node, from a member
    for (const sender of [c.a1, c.n1, c.b1]) {
      const event = `room-ev-${tag()}`;
      const payload = { from: sender.label };
      sender.socket.emit("to-room", room, event, payload);
      await delivered(event, payload, members, others);
    }
    // POST /emit with a room, on a Rust node and on the Node.js node
    for (const node of [nodes.b, nodes.n]) {
      const event = `http-ev-${tag()}`;
      const data = { via: node.name };
      await ok(node, "POST", "/emit", { room, event, data });
      await delivered(event, data, members, others);
    }
    for (const x of all) x.close();
  });

  it("2. a client cut on Rust node A recovers on Rust node B, with the events B and the Node.js node sent meanwhile", { timeout: TEST_TIMEOUT_MS }, async () => {
    const nClient = await connect(nodes.n);
    const back = await recoveryRound({
      fromNode: nodes.a,
      toNode: nodes.b,
      senders: [{ node: nodes.b }, { node: nodes.n }, { client: nClient }],
    });
    back.close();
    nClient.close();
  });

  it("3. Rust → Node.js: cut on Rust node A, recovered on the Node.js node", { timeout: TEST_TIMEOUT_MS }, async () => {
    const back = await recoveryRound({
      fromNode: nodes.a,
      toNode: nodes.n,
      senders: [{ node: nodes.b }, { node: nodes.n }],
    });
    back.close();
  });

  it("3. Node.js → Rust: cut on the Node.js node, recovered on Rust node B", { timeout: TEST_TIMEOUT_MS }, async () => {
    const back = await recoveryRound({
      fromNode: nodes.n,
      toNode: nodes.b,
      senders: [{ node: nodes.a }, { node: nodes.n }],
    });
    back.close();
  });

  it("4. after Rust node A is killed (SIGKILL), a client cut from it recovers on Rust node B", { timeout: TEST_TIMEOUT_MS }, async () => {
    const back = await recoveryRound({
      fromNode: nodes.a,
      toNode: nodes.b,
      senders: [{ node: nodes.b }, { node: nodes.n }],
      beforeReturn: async () => {
        const { signal } = await nodes.a.proc.stop("SIGKILL");
        assert.equal(signal, "SIGKILL");
        nodes.a.proc.stopped = true;
      },
    });
    back.close();
  });
});

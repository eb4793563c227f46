// A Ferrio cluster that needs no sticky sessions (docs/scaling.md): three `interop` nodes on a
// private redis-server, behind this test's own round-robin proxy with no affinity, so every
// HTTP request and every WebSocket upgrade goes to the next node. The official client, polling
// only or polling upgraded to WebSocket, sees ordinary sessions: acked echoes, server-to-client
// acks, rooms across nodes, HTTP emits, binary, heartbeats, disconnects, 20 clients at once;
// and when the node owning a session is killed, its client reconnects cleanly.
//
// Run from the repository root: node --test tests/e2e/no-sticky.test.mjs
// Binary under test: $INTEROP_BIN, default target/debug/interop.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startServer, startRedis } from "./server.mjs";
import { once, until } from "./cluster.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BIN = process.env.INTEROP_BIN || DEFAULT_BIN;
const WAIT_MS = 5_000;
const QUIET_MS = 300;

/**
 * A round-robin HTTP and WebSocket proxy with no affinity: each request, and each upgrade, to
 * the next port of `ports` (an array the test may change, as a balancer's health check would).
 */
function roundRobinProxy(ports) {
  let next = 0;
  const pick = () => ports[next++ % ports.length];
  const counts = new Map();
  const server = http.createServer((req, res) => {
    const port = pick();
    counts.set(port, (counts.get(port) ?? 0) + 1);
    const upstream = http.request(
      { host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket, head) => {
    const port = pick();
    counts.set(port, (counts.get(port) ?? 0) + 1);
    const upstream = net.connect(port, "127.0.0.1", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port, counts, ports })));
}

describe("three nodes behind a round-robin proxy, no affinity", { timeout: 60_000 }, () => {
  let redis;
  const nodes = [];
  let proxy;
  let base;

  const startNode = async () => {
    const env = {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${await redis.ready}`,
      PING_INTERVAL_MS: "300",
      PING_TIMEOUT_MS: "400",
    };
    for (const name of ["PARSER", "SIO_PATH", "RECOVERY", "REDIS_STREAMS", "ADVERTISE_ADDR"]) delete env[name];
    const node = startServer({ bin: BIN, env, label: "interop (REDIS_URL)", hint: "build it with `cargo build -p interop`" });
    node.port = await node.ready;
    return node;
  };

  before(async () => {
    redis = startRedis();
    await redis.ready;
    for (let i = 0; i < 3; i++) nodes.push(await startNode());
    proxy = await roundRobinProxy(nodes.map((n) => n.port));
    base = `http://127.0.0.1:${proxy.port}`;
    // Every node sees the others.
    for (const node of nodes) {
      await until("three servers", async () => {
        const res = await fetch(`http://127.0.0.1:${node.port}/cluster`);
        return (await res.json()).servers === 3;
      });
    }
  });

  after(async () => {
    proxy?.server.close();
    proxy?.server.closeAllConnections?.();
    for (const node of nodes) await node.stop();
    await redis?.stop();
  });

  const connect = async (transports, options = {}) => {
    const socket = io(base, { transports, forceNew: true, reconnection: false, ...options });
    await once(socket, "connect");
    return socket;
  };

  const post = async (path, body) => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, await res.text());
  };

  for (const [label, transports] of [["polling only", ["polling"]], ["polling upgraded to WebSocket", ["polling", "websocket"]]]) {
    it(`${label}: acks both ways, binary, rooms across nodes, HTTP emits, heartbeats`, async () => {
      const a = await connect(transports);
      const b = await connect(transports);
      try {
        if (transports.includes("websocket")) {
          await until("upgraded", () => a.io.engine.transport.name === "websocket" && b.io.engine.transport.name === "websocket");
        }
        // Acked echoes, many requests in a row (each poll and post goes to the next node).
        for (let i = 0; i < 10; i++) {
          assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("echo", { i }), { i });
        }
        // Binary, nested.
        const bin = Buffer.from([0, 1, 2, 255]);
        const back = await a.timeout(WAIT_MS).emitWithAck("echo", { bin });
        assert.ok(Buffer.from(back.bin).equals(bin));
        // Server-to-client ack.
        b.once("question", (payload, answer) => answer({ answered: payload }));
        assert.deepEqual(await b.timeout(WAIT_MS).emitWithAck("ask", 5), { answered: 5 });
        // Rooms across nodes (each client's session lives on whichever node took its handshake).
        assert.equal(await b.timeout(WAIT_MS).emitWithAck("join", "r"), true);
        const got = once(b, "news");
        a.emit("to-room", "r", "news", "from-a");
        assert.deepEqual(await got, ["from-a"]);
        let leaked = false;
        a.once("news", () => (leaked = true));
        const fromHttp = once(b, "news");
        await post("/emit", { room: "r", event: "news", data: "from-http" });
        assert.deepEqual(await fromHttp, ["from-http"]);
        await new Promise((r) => setTimeout(r, QUIET_MS));
        assert.equal(leaked, false, "a non-member got a room emit");
        // Two heartbeats (300 ms each) survived, through whatever node each request reached.
        const id = a.id;
        await new Promise((r) => setTimeout(r, 800));
        assert.equal(a.connected, true);
        assert.equal(a.id, id);
        assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("echo", "still"), "still");
      } finally {
        a.close();
        b.close();
      }
    });
  }

  it("server and client disconnects behave as on one node", async () => {
    const a = await connect(["polling"]);
    const b = await connect(["polling"]);
    try {
      assert.equal(await a.timeout(WAIT_MS).emitWithAck("join", "gone"), true);
      const reason = once(a, "disconnect");
      await post("/disconnect", { room: "gone" });
      assert.equal((await reason)[0], "io server disconnect");
      const id = b.id;
      b.disconnect();
      await until("the client's disconnect reached its node", async () => {
        const res = await fetch(`${base}/sockets`);
        return !(await res.json()).ids.includes(id);
      });
    } finally {
      a.close();
      b.close();
    }
  });

  it("20 clients at once, polling only", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(["polling"])));
    try {
      const echoes = await Promise.all(clients.map((c, i) => c.timeout(WAIT_MS).emitWithAck("echo", i)));
      assert.deepEqual(echoes, clients.map((_, i) => i));
      const heard = clients.map((c) => once(c, "hello"));
      await post("/emit", { event: "hello", data: "all" });
      assert.equal((await Promise.all(heard)).length, 20);
      assert.ok([...proxy.counts.values()].every((n) => n > 0), "every node served requests");
    } finally {
      for (const c of clients) c.close();
    }
  });

  it("Redis restarted: sessions go on, and new ones open", async () => {
    const a = await connect(["polling"]);
    try {
      const port = await redis.ready;
      await redis.stop();
      // Requests for other nodes' sessions still find their owner (the last known address).
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("echo", i), i);
      }
      redis = startRedis({ port });
      await redis.ready;
      for (const node of nodes) {
        await until("the node is back on Redis", async () => {
          const res = await fetch(`http://127.0.0.1:${node.port}/cluster`);
          const cluster = await res.json();
          return cluster.redis.connected && cluster.servers === 3;
        });
      }
      // The nodes announce themselves again within their renewal period (2 s); meanwhile,
      // and after, the old session and new ones work.
      assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("echo", "after"), "after");
      const b = await connect(["polling"]);
      assert.deepEqual(await b.timeout(WAIT_MS).emitWithAck("echo", "new"), "new");
      b.close();
    } finally {
      a.close();
    }
  });

  it("a client whose node is killed reconnects to the others", async () => {
    // A fourth node joins the balancer, so killing it leaves the three.
    const extra = await startNode();
    await until("four servers", async () => (await (await fetch(`http://127.0.0.1:${extra.port}/cluster`)).json()).servers === 4);
    proxy.ports.push(extra.port);
    const extraTag = await probeTag(extra.port);
    // Connect until a session lands on the extra node (its sid starts with that node's tag).
    let victim;
    const others = [];
    for (let i = 0; i < 12 && !victim; i++) {
      // One more request through the balancer, so the handshakes do not always land on the
      // same nodes (each connect makes the same number of requests).
      await fetch(`${base}/health`);
      const socket = io(base, { transports: ["polling"], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
      await once(socket, "connect");
      if (socket.io.engine.id.startsWith(extraTag)) victim = socket;
      else others.push(socket);
    }
    try {
      assert.ok(victim, "a session landed on the extra node");
      const down = once(victim, "disconnect");
      await extra.stop("SIGKILL");
      // The balancer notices (its health check, here the test) and drops the dead node.
      proxy.ports.splice(proxy.ports.indexOf(extra.port), 1);
      await down;
      await once(victim, "connect");
      assert.ok(!victim.io.engine.id.startsWith(extraTag), "a new session on a live node");
      assert.deepEqual(await victim.timeout(WAIT_MS).emitWithAck("echo", "alive"), "alive");
      for (const other of others) {
        assert.equal(other.connected, true);
        assert.deepEqual(await other.timeout(WAIT_MS).emitWithAck("echo", "ok"), "ok");
      }
    } finally {
      victim?.close();
      for (const other of others) other.close();
    }
  });
});

/** The sid tag of the node on `port`: the first 6 characters of a session it opens. */
async function probeTag(port) {
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`);
  const body = await res.text();
  return JSON.parse(body.slice(1)).sid.slice(0, 6);
}

// The `@socket.io/admin-ui` protocol of interop with ADMIN=1 (docs/examples.md, section 2;
// docs/monitoring.md): login, sessions, config, every development-mode event, the
// operations, read-only mode, two nodes on Redis in the server list; and GET /metrics.

import { test } from "node:test";
import assert from "node:assert/strict";
import { io as connect } from "socket.io-client";
import { startRedis, startServer } from "./server.mjs";

const BIN = process.env.INTEROP_BIN ?? "target/debug/interop";
const HINT = "build it with `cargo build -p interop` or point INTEROP_BIN at it";
const WAIT = 5_000;

function env(extra) {
  const env = { ...process.env };
  for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY", "ADMIN", "ADMIN_READONLY"]) delete env[name];
  return Object.assign(env, { ADMIN: "1", ADMIN_STATS_MS: "200" }, extra);
}

async function withServer(extra, run) {
  const server = startServer({ bin: BIN, env: env(extra), label: "interop (ADMIN=1)", hint: HINT });
  try {
    await run(`http://127.0.0.1:${await server.ready}`);
  } finally {
    await server.stop();
  }
}

/** The next `event` on `socket` (its arguments), within WAIT ms, that `accept` takes. */
function next(socket, event, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no ${event} within ${WAIT} ms`));
    }, WAIT);
    const on = (...args) => {
      if (!accept(...args)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(args);
    };
    socket.on(event, on);
  });
}

function admin(url, auth) {
  return connect(`${url}/admin`, { auth, transports: ["websocket"], forceNew: true, reconnection: false });
}

/** An admin socket connected with the right password, with its `session` and `config`. */
async function login(url) {
  const socket = admin(url, { username: "admin", password: "admin-pass" });
  const session = next(socket, "session");
  const config = next(socket, "config");
  const sockets = next(socket, "all_sockets");
  await next(socket, "connect");
  return { socket, session: (await session)[0], config: (await config)[0], sockets: sockets.then((a) => a[0]) };
}

async function client(url) {
  const socket = connect(url, { forceNew: true, reconnection: false });
  await next(socket, "connect");
  return socket;
}

test("a wrong password is refused with `invalid credentials`", { timeout: 20_000 }, async () => {
  await withServer({}, async (url) => {
    for (const auth of [{ username: "admin", password: "nope" }, { username: "root", password: "admin-pass" }, {}]) {
      const socket = admin(url, auth);
      const [err] = await next(socket, "connect_error");
      assert.equal(err.message, "invalid credentials");
      socket.close();
    }
    const forged = admin(url, { sessionId: "0123456789abcdef" });
    assert.equal((await next(forged, "connect_error"))[0].message, "invalid credentials");
    forged.close();
  });
});

test("login: session, config, all_sockets, server_stats; the session id logs in again", { timeout: 20_000 }, async () => {
  await withServer({}, async (url) => {
    const user = await client(url);
    const { socket, session, config, sockets } = await login(url);
    assert.match(session, /^[0-9a-f]{16}$/);
    assert.deepEqual(config.supportedFeatures, [
      "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS",
    ]);
    const all = await sockets;
    const listed = all.find((s) => s.id === user.id);
    assert.ok(listed, `the user's socket is listed: ${JSON.stringify(all)}`);
    assert.equal(listed.nsp, "/");
    assert.equal(listed.transport, "websocket");
    assert.ok(listed.rooms.includes(user.id));
    assert.equal(typeof listed.handshake.headers, "object");
    assert.equal(listed.handshake.auth, undefined, "the auth is not shown");
    assert.ok(all.some((s) => s.nsp === "/admin"), "the admin socket itself is listed");

    const [stats] = await next(socket, "server_stats");
    for (const key of ["serverId", "hostname", "pid", "uptime", "clientsCount", "pollingClientsCount", "aggregatedEvents"]) {
      assert.ok(key in stats, `${key} in ${JSON.stringify(stats)}`);
    }
    assert.equal(stats.clientsCount, 2);
    assert.deepEqual(
      stats.namespaces.find((n) => n.name === "/"),
      { name: "/", socketsCount: 1 },
    );

    // The session id alone logs in again, without a new session.
    const again = admin(url, { sessionId: session });
    const config2 = next(again, "config");
    await next(again, "connect");
    assert.ok((await config2)[0].supportedFeatures.includes("EMIT"));
    socket.close();
    again.close();
    user.close();
  });
});

test("development mode reports connects, rooms, events, upgrades and disconnects", { timeout: 20_000 }, async () => {
  await withServer({}, async (url) => {
    const { socket: ui } = await login(url);
    const connected = next(ui, "socket_connected", (s) => s.nsp === "/");
    const upgraded = next(ui, "socket_updated");
    const user = connect(url, { forceNew: true, reconnection: false }); // polling, then upgrade
    const [serialized, when] = await connected;
    await next(user, "connect").catch(() => {});
    assert.equal(serialized.id, user.id);
    assert.equal(serialized.transport, "polling");
    assert.ok(!Number.isNaN(Date.parse(when)));
    const [update] = await upgraded;
    assert.deepEqual(update, { id: user.id, nsp: "/", transport: "websocket" });

    const joined = next(ui, "room_joined", (nsp, room) => room === "lobby");
    const received = next(ui, "event_received", (nsp, id, args) => args[0] === "join");
    const sent = next(ui, "event_sent", (nsp, id, args) => args[0] === "echo");
    assert.equal(await user.emitWithAck("join", "lobby"), true);
    assert.deepEqual((await joined).slice(0, 3), ["/", "lobby", user.id]);
    assert.deepEqual((await received).slice(0, 3), ["/", user.id, ["join", "lobby"]]);
    user.emit("echo", { n: 1 });
    assert.deepEqual((await sent).slice(0, 3), ["/", user.id, ["echo", { n: 1 }]]);

    const left = next(ui, "room_left", (nsp, room) => room === "lobby");
    assert.equal(await user.emitWithAck("leave", "lobby"), true);
    assert.deepEqual((await left).slice(0, 3), ["/", "lobby", user.id]);

    const userId = user.id; // (the client forgets it on disconnect)
    const gone = next(ui, "socket_disconnected", (nsp, id) => id === userId);
    user.close();
    const [nsp, id, reason, at] = await gone;
    assert.deepEqual([nsp, id, reason], ["/", userId, "client namespace disconnect"]);
    assert.ok(!Number.isNaN(Date.parse(at)));
    ui.close();
  });
});

test("operations: emit, join, leave and _disconnect, by room or by socket id", { timeout: 20_000 }, async () => {
  await withServer({}, async (url) => {
    const { socket: ui } = await login(url);
    const a = await client(url);
    const b = await client(url);

    // emit to one socket (its id as the filter), then to everyone
    const toA = next(a, "news");
    ui.emit("emit", "/", a.id, "news", "only a", 2);
    assert.deepEqual(await toA, ["only a", 2]);
    const both = Promise.all([next(a, "all"), next(b, "all")]);
    ui.emit("emit", "/", undefined, "all", "x");
    assert.deepEqual(await both, [["x"], ["x"]]);

    // join by socket id, then everyone in that room leaves, then join everyone
    const joined = next(ui, "room_joined", (nsp, room) => room === "vip");
    ui.emit("join", "/", "vip", b.id);
    assert.deepEqual((await joined).slice(0, 3), ["/", "vip", b.id]);
    assert.deepEqual(await b.emitWithAck("rooms"), ["vip"]);
    assert.deepEqual(await a.emitWithAck("rooms"), []);
    const left = next(ui, "room_left", (nsp, room) => room === "vip");
    ui.emit("leave", "/", "vip", "vip");
    await left;
    assert.deepEqual(await b.emitWithAck("rooms"), []);
    ui.emit("join", "/", "all-in");
    await next(ui, "room_joined", (nsp, room, id) => room === "all-in" && id === a.id);
    assert.deepEqual(await a.emitWithAck("rooms"), ["all-in"]);

    // _disconnect one socket by id: it leaves with a server-side disconnect
    const kicked = next(b, "disconnect");
    ui.emit("_disconnect", "/", false, b.id);
    assert.deepEqual(await kicked, ["io server disconnect", undefined]);
    assert.equal(a.connected, true);
    ui.close();
    a.close();
  });
});

test("read-only mode offers no operation and ignores them", { timeout: 20_000 }, async () => {
  await withServer({ ADMIN_READONLY: "1" }, async (url) => {
    const { socket: ui, config } = await login(url);
    assert.deepEqual(config.supportedFeatures, ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
    const user = await client(url);
    let got = false;
    user.on("news", () => (got = true));
    ui.emit("emit", "/", user.id, "news", 1);
    ui.emit("join", "/", "vip", user.id);
    ui.emit("_disconnect", "/", false, user.id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got, false);
    assert.deepEqual(await user.emitWithAck("rooms"), []);
    assert.equal(user.connected, true);
    ui.close();
    user.close();
  });
});

test("two nodes on Redis both appear in the server list of one UI", { timeout: 30_000 }, async () => {
  const redis = startRedis();
  const redisPort = await redis.ready;
  const nodes = [];
  try {
    const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
    for (let i = 0; i < 2; i += 1) {
      const node = startServer({ bin: BIN, env: env({ REDIS_URL }), label: `interop node ${i}`, hint: HINT });
      nodes.push(node);
    }
    const ports = await Promise.all(nodes.map((n) => n.ready));
    const { socket: ui } = await login(`http://127.0.0.1:${ports[0]}`);
    const seen = new Map();
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`servers seen: ${[...seen.keys()]}`)), 10_000);
      ui.on("server_stats", (stats) => {
        seen.set(stats.serverId, stats.pid);
        if (seen.size >= 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.deepEqual([...seen.values()].sort(), nodes.map((n) => n.pid).sort());
    ui.close();
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  }
});

test("GET /metrics serves the Prometheus text format, and its counters move", { timeout: 20_000 }, async () => {
  await withServer({ ADMIN: "0" }, async (url) => {
    const scrape = async () => {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4");
      const values = new Map();
      for (const line of (await res.text()).split("\n")) {
        if (!line || line.startsWith("#")) continue;
        const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
        assert.ok(m, `a sample line: ${line}`);
        values.set(m[1] + (m[2] ?? ""), Number(m[3]));
      }
      return values;
    };
    const user = await client(url);
    assert.deepEqual(await user.emitWithAck("echo", "hi"), "hi");
    const during = await scrape();
    assert.equal(during.get('socket_io_connected{namespace="/"}'), 1);
    assert.equal(during.get('socket_io_connect_total{namespace="/"}'), 1);
    assert.ok(during.get('socket_io_events_received_total{namespace="/"}') >= 1);
    assert.ok(during.get('socket_io_recv_bytes{namespace="/"}') > 0);
    assert.ok(during.get('socket_io_events_sent_total{namespace="/"}') >= 1, "welcome");
    user.close();
    let after;
    for (let i = 0; i < 50; i += 1) {
      after = await scrape();
      if (after.get('socket_io_disconnect_total{namespace="/"}') === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(after.get('socket_io_disconnect_total{namespace="/"}'), 1);
    assert.equal(after.get('socket_io_connected{namespace="/"}'), 0);
  });
});

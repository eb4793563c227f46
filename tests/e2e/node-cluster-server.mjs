// A Node.js member of a Redis cluster for tests/e2e/redis-cluster.test.mjs and
// tests/e2e/redis-streams.test.mjs (not a test file itself): the npm `socket.io` 4.8 server on
// `@socket.io/redis-adapter` 8.3 with the `redis` client, as the adapter's documentation sets it
// up (a publishing client and a duplicate of it that subscribes), default key `socket.io`.
// With `REDIS_STREAMS=1` it runs `@socket.io/redis-streams-adapter` 0.3 instead (one client, which
// the adapter duplicates for reading; stream `socket.io`, sessions `sio:session:<pid>`), and with
// `RECOVERY=1` connection state recovery (`maxDisconnectionDuration: 120000`), like interop.
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=0 node tests/e2e/node-cluster-server.mjs
//   REDIS_URL=... REDIS_STREAMS=1 RECOVERY=1 PORT=0 node tests/e2e/node-cluster-server.mjs
//
// It follows the contract of the `interop` example (docs/examples.md, section 2) for the subset
// the cluster test uses, so that a test can drive any node of the cluster the same way:
// - namespace `/`: `welcome` on connect, `echo`, `join`, `leave`, `rooms`, `to-room`,
//   `broadcast`, `disconnect-me`;
// - the server-side event `ping` (one argument) is acknowledged with
//   `{pong: <argument>, server: "node"}` (interop answers `server: "ferrio"`);
// - HTTP: `GET /health`, `POST /emit`, `GET /sockets` (through `io.fetchSockets()`, so
//   cluster-wide), `POST /disconnect`, `POST /server-emit` and `GET /cluster` (`{servers}` only:
//   there is no adapter health to report).
// Binds 127.0.0.1:$PORT (0 = a free port) and prints `listening on PORT` once it accepts
// connections. SIGTERM/SIGINT close it.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const RESERVED = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);
const SERVER_EMIT_TIMEOUT_MS = 2_000;

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  console.error("node-cluster-server: REDIS_URL is not set");
  process.exit(2);
}
const port = Number(process.env.PORT ?? "3000");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`node-cluster-server: PORT ${process.env.PORT} is not a port number`);
  process.exit(2);
}

const streams = process.env.REDIS_STREAMS === "1";
const recovery = process.env.RECOVERY === "1";

const pubClient = createClient({ url: redisUrl });
// The streams adapter duplicates the client it is given for its reader and its subscriber.
const subClient = streams ? null : pubClient.duplicate();
const clients = subClient ? [pubClient, subClient] : [pubClient];
for (const client of clients) {
  client.on("error", (err) => console.error(`node-cluster-server: redis: ${err.message}`));
}
await Promise.all(clients.map((client) => client.connect()));

// ---------------------------------------------------------------------------------------------
// HTTP routes (the requests socket.io does not take)
// ---------------------------------------------------------------------------------------------

function reply(res, status, body) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain" : "application/json",
  });
  res.end(text);
}

async function readJson(req) {
  if (!String(req.headers["content-type"] ?? "").startsWith("application/json")) {
    throw new Error("expected Content-Type: application/json");
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new Error("expected a JSON object");
  }
  return body;
}

function checkEvent(body) {
  if (typeof body.event !== "string") throw new Error("missing `event`");
  if (!("data" in body)) throw new Error("missing `data`");
  if (RESERVED.has(body.event)) throw new Error(`"${body.event}" is a reserved event name`);
}

/** `io` when `room` is absent, else `io.to(room)`. */
const target = (room) => (typeof room === "string" ? io.to(room) : io);

async function route(req, res) {
  const url = new URL(req.url, "http://localhost");
  const key = `${req.method} ${url.pathname}`;
  if (key === "GET /health") return reply(res, 200, "ok");
  if (key === "GET /sockets") {
    const room = url.searchParams.get("room");
    const sockets = await (room === null ? io : io.in(room)).fetchSockets();
    return reply(res, 200, { ids: sockets.map((s) => s.id).sort() });
  }
  if (key === "GET /cluster") {
    return reply(res, 200, { servers: await io.of("/").adapter.serverCount(), redis: null });
  }
  if (req.method !== "POST") return reply(res, 404, { error: "not found" });

  let body;
  try {
    body = await readJson(req);
    if (url.pathname === "/emit" || url.pathname === "/server-emit") checkEvent(body);
  } catch (err) {
    return reply(res, 400, { error: err.message });
  }
  switch (url.pathname) {
    case "/emit":
      target(body.room).emit(body.event, body.data);
      return reply(res, 200, { ok: true });
    case "/disconnect":
      target(body.room).disconnectSockets();
      return reply(res, 200, { ok: true });
    case "/server-emit": {
      // The adapter waits for one answer per other server (PUBSUB NUMSUB - 1); stop at 2 s
      // like interop does.
      const answer = await new Promise((resolve) => {
        const timer = setTimeout(
          () => resolve({ status: 504, body: { error: "no answer within 2 s" } }),
          SERVER_EMIT_TIMEOUT_MS,
        );
        io.serverSideEmit(body.event, body.data, (err, responses) => {
          clearTimeout(timer);
          resolve(
            err
              ? { status: 504, body: { error: err.message, responses } }
              : { status: 200, body: { responses: responses.map((r) => r ?? null) } },
          );
        });
      });
      return reply(res, answer.status, answer.body);
    }
    default:
      return reply(res, 404, { error: "not found" });
  }
}

const httpServer = createServer((req, res) => {
  route(req, res).catch((err) => reply(res, 500, { error: err.message }));
});

// ---------------------------------------------------------------------------------------------
// Socket.IO
// ---------------------------------------------------------------------------------------------

const io = new Server(httpServer, {
  cors: { origin: "*" },
  adapter: streams ? createStreamsAdapter(pubClient) : createAdapter(pubClient, subClient),
  ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000 } } : {}),
});

io.on("connection", (socket) => {
  socket.emit("welcome", { id: socket.id, auth: socket.handshake.auth ?? {} });

  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("leave", (room, ack) => {
    socket.leave(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("rooms", (ack) => {
    if (typeof ack === "function") ack([...socket.rooms].filter((r) => r !== socket.id).sort());
  });
  socket.on("to-room", (room, event, payload) => {
    if (typeof room === "string" && typeof event === "string" && !RESERVED.has(event)) {
      io.to(room).emit(event, payload);
    }
  });
  socket.on("broadcast", (event, payload) => {
    if (typeof event === "string" && !RESERVED.has(event)) socket.broadcast.emit(event, payload);
  });
  socket.on("disconnect-me", () => socket.disconnect());
});

// A server-side event from another server of the cluster.
io.on("ping", (data, ack) => {
  if (typeof ack === "function") ack({ pong: data ?? null, server: "node" });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${httpServer.address().port}`);
});

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  io.close(() => {
    Promise.allSettled(clients.map((client) => client.quit())).then(() => process.exit(0));
  });
  setTimeout(() => process.exit(0), 2_000).unref();
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

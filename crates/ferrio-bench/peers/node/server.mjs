// Benchmark peer: the benchmark contract of Ferrio's `interop` example (welcome, echo, burst,
// join, to-room, GET /health, POST /emit) served by the reference Node.js server, npm
// `socket.io` (exact version in package.json), attached to a plain `node:http` server with
// default options plus CORS for any origin. It exists only to be measured beside Ferrio.
//
// With `REDIS_URL` (e.g. `redis://127.0.0.1:6379`) it joins a cluster through npm
// `@socket.io/redis-adapter` (default key `socket.io`) on two npm `redis` clients, one
// publishing and one subscribing, as `interop` does with the same variable: `burst`,
// `to-room` and `POST /emit` then reach every server of the cluster.
//
//   npm ci && PORT=0 node server.mjs     # prints `listening on PORT`
//   REDIS_URL=redis://127.0.0.1:6379 PORT=0 node server.mjs

import http from "node:http";
import { Server } from "socket.io";

/** The most `bcast` packets one `burst` may ask for. */
const MAX_BURST = 100_000;

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** `POST /emit` `{"room"?: string, "event": string, "data": any}`, checked like `interop`. */
async function emit(req, res) {
  let request;
  try {
    request = JSON.parse(await readBody(req));
  } catch (err) {
    return sendJson(res, 400, { error: `invalid JSON: ${err.message}` });
  }
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    return sendJson(res, 400, { error: "expected a JSON object" });
  }
  const { room, event, data } = request;
  if (typeof event !== "string" || !("data" in request)) {
    return sendJson(res, 400, { error: "expected {room?: string, event: string, data: any}" });
  }
  if (room !== undefined && room !== null && typeof room !== "string") {
    return sendJson(res, 400, { error: "room must be a string" });
  }
  try {
    (typeof room === "string" ? io.to(room) : io).emit(event, data);
  } catch (err) {
    // Reserved event names such as `connect` throw.
    return sendJson(res, 400, { error: err.message });
  }
  sendJson(res, 200, { ok: true });
}

// socket.io answers the requests under /socket.io/ before this listener sees them.
const server = http.createServer(
  // hyper (under the Rust servers) keeps idle keep-alive connections open; so does this one.
  { keepAliveTimeout: 0, noDelay: true },
  (req, res) => {
    if (req.method === "GET" && req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      res.end("ok");
    } else if (req.method === "POST" && req.url === "/emit") {
      emit(req, res).catch(() => sendJson(res, 400, { error: "unreadable body" }));
    } else {
      res.writeHead(404);
      res.end();
    }
  },
);

const io = new Server(server, {
  path: "/socket.io/",
  transports: ["polling", "websocket"],
  pingInterval: 25_000,
  pingTimeout: 20_000,
  maxHttpBufferSize: 1_000_000,
  // Any origin, with credentials, like `interop`.
  cors: { origin: true, credentials: true },
});

io.on("connection", (socket) => {
  socket.emit("welcome", { id: socket.id, auth: socket.handshake.auth ?? {} });

  socket.on("echo", (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    if (ack) {
      ack(...args);
    } else {
      socket.emit("echo", ...args);
    }
  });

  socket.on("burst", (burst) => {
    const n = burst?.n;
    if (!Number.isInteger(n) || n < 0 || n > MAX_BURST || !("payload" in burst)) {
      return;
    }
    for (let i = 0; i < n; i++) {
      io.emit("bcast", burst.payload);
    }
  });

  // The sender too, if it is in the room: so from the server, not from the socket.
  socket.on("to-room", (room, event, payload) => {
    if (typeof room !== "string" || typeof event !== "string") {
      return;
    }
    try {
      io.to(room).emit(event, payload);
    } catch {
      // Reserved event names such as `connect` throw; `interop` drops them too.
    }
  });

  socket.on("join", (room, ack) => {
    if (typeof room !== "string") {
      return;
    }
    socket.join(room);
    if (typeof ack === "function") {
      ack(true);
    }
  });
});

function shutdown() {
  io.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`bench-peer-node: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
/** Puts `io` on the Redis adapter when `REDIS_URL` is set; resolves once both clients are up. */
async function joinCluster(url) {
  const [{ createAdapter }, { createClient }] = await Promise.all([
    import("@socket.io/redis-adapter"),
    import("redis"),
  ]);
  const publisher = createClient({ url });
  const subscriber = publisher.duplicate();
  for (const client of [publisher, subscriber]) {
    // Without a listener an `error` event ends the process; the clients reconnect themselves.
    client.on("error", (err) => console.error(`bench-peer-node: redis: ${err.message}`));
  }
  await Promise.all([publisher.connect(), subscriber.connect()]);
  io.adapter(createAdapter(publisher, subscriber));
}

const redisUrl = process.env.REDIS_URL;
if (redisUrl) {
  try {
    await joinCluster(redisUrl);
  } catch (err) {
    console.error(`bench-peer-node: cannot use REDIS_URL ${JSON.stringify(redisUrl)}: ${err.message}`);
    process.exit(2);
  }
}

server.on("error", (err) => {
  console.error(`bench-peer-node: cannot bind 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});

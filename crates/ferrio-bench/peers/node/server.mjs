// Benchmark peer: the benchmark contract of Ferrio's `interop` example (welcome, echo, burst,
// join, GET /health, POST /emit) served by the reference Node.js server, npm `socket.io`
// (exact version in package.json), attached to a plain `node:http` server with default
// options plus CORS for any origin. It exists only to be measured beside Ferrio.
//
//   npm ci && PORT=0 node server.mjs     # prints `listening on PORT`

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
server.on("error", (err) => {
  console.error(`bench-peer-node: cannot bind 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});

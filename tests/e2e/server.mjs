// Starting and stopping an example server (and a private redis-server) for the end-to-end tests
// (not a test file itself).

import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { createServer as createNetServer } from "node:net";

const STARTUP_TIMEOUT_MS = 10_000;

/**
 * Spawns `bin args` with `env` (PORT=0 added); `ready` resolves with the port once the server
 * prints `listening on <port>`. `hint` says how to build the binary when it is missing.
 */
export function startServer({ bin, args = [], env, label, hint }) {
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`binary not found or not executable at ${bin}; ${hint}`);
  }
  const child = spawn(bin, args, { env: { ...env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    if (process.env.E2E_SERVER_LOG) process.stderr.write(chunk);
    stderr = (stderr + chunk).slice(-8_000);
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      process.off("exit", killOnExit);
      resolve({ code, signal });
    });
  });

  const ready = new Promise((resolve, reject) => {
    let stdout = "";
    const fail = (why) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${why}\n--- stdout ---\n${stdout}\n--- stderr (tail) ---\n${stderr}`));
    };
    const timer = setTimeout(
      () => fail(`${label} did not print "listening on <port>" within ${STARTUP_TIMEOUT_MS} ms`),
      STARTUP_TIMEOUT_MS,
    );
    const onError = (err) => fail(`cannot spawn ${bin}: ${err.message}`);
    const onEarlyExit = (code, signal) =>
      fail(`${label} exited (code ${code}, signal ${signal}) before printing its port`);
    child.once("error", onError);
    child.once("exit", onEarlyExit);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const m = /^listening on (\d+)\s*$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        child.off("exit", onEarlyExit);
        child.off("error", onError);
        const port = Number(m[1]);
        if (!(port > 0 && port < 65536)) {
          fail(`server printed an invalid port: ${m[0]}`);
          return;
        }
        resolve(port);
      }
    });
  });

  /** Sends `signal` (escalating to SIGKILL after 5 s); resolves with how the process ended. */
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const escalate = setTimeout(() => child.kill("SIGKILL"), 5_000);
      const result = await exited;
      clearTimeout(escalate);
      return result;
    }
    return exited;
  };

  return { ready, stop, stderrTail: () => stderr, pid: child.pid };
}


/** A port that was free a moment ago (bound on 127.0.0.1 with port 0, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a private `redis-server` on a free port of 127.0.0.1 (no persistence), so that a test's
 * pub/sub channels are its own (channels ignore database numbers). `ready` resolves with the
 * port once the server accepts connections; `stop()` ends it. `$REDIS_SERVER_BIN` overrides the
 * `redis-server` found on the PATH. `port` starts it on that port (to restart a stopped one).
 */
export function startRedis({ bin = process.env.REDIS_SERVER_BIN || "redis-server", port: fixedPort } = {}) {
  let child;
  let output = "";
  const ready = (async () => {
    // Another process may take the port between the probe and the bind: try a few ports.
    for (let attempt = 1; ; attempt += 1) {
      const port = fixedPort ?? (await freePort());
      child = spawn(
        bin,
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      output = "";
      const started = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(`no "Ready to accept connections" within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
        const onData = (chunk) => {
          output = (output + chunk).slice(-8_000);
          if (/Ready to accept connections/.test(output)) {
            clearTimeout(timer);
            resolve(true);
          }
        };
        child.stdout.setEncoding("utf8");
        child.stderr.setEncoding("utf8");
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.once("error", (err) => {
          clearTimeout(timer);
          resolve(`cannot spawn ${bin} (is redis-server installed?): ${err.message}`);
        });
        child.once("exit", (code, signal) => {
          clearTimeout(timer);
          resolve(`${bin} exited (code ${code}, signal ${signal})`);
        });
      });
      if (started === true) {
        const killOnExit = () => child.kill("SIGKILL");
        process.once("exit", killOnExit);
        child.once("exit", () => process.off("exit", killOnExit));
        return port;
      }
      child.kill("SIGKILL");
      if (attempt >= 3) throw new Error(`redis-server did not start: ${started}\n${output}`);
    }
  })();

  /** Ends the server (SIGTERM, then SIGKILL after 5 s). */
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const escalate = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(escalate);
  };

  return { ready, stop, output: () => output };
}

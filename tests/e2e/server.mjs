// Starting and stopping an example server for the end-to-end tests (not a test file itself).

import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";

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


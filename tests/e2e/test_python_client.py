"""End-to-end tests of the `interop` example (contract: docs/examples.md, section 2) driven by the
Python client `python-socketio` (its synchronous `socketio.Client`), with the default JSON
parser and with `serializer='msgpack'`.

Run from the repository root (scripts/test.sh creates the virtualenv):
    tests/e2e/.venv/bin/python -m unittest discover -s tests/e2e -p 'test_*.py' -v
Binary under test: $INTEROP_BIN (any executable), default <repo>/target/debug/interop.
Set E2E_SERVER_LOG=1 to forward the servers' stderr (tracing logs) to this process's stderr.

One server process per parser (PARSER unset / PARSER=msgpack), each on PORT=0, started in
setUpModule and stopped (SIGTERM) in tearDownModule. PARSER, SIO_PATH, REDIS_URL and RECOVERY
are never inherited from the caller's environment. Every scenario runs with transports
['websocket'] and ['polling'] and with both parsers (one generated TestCase class per pair).
Every wait is bounded; every client is disconnected when its test ends, pass or fail.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import unittest

import socketio

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.normpath(os.path.join(HERE, "..", "..", "target", "debug", "interop"))
BIN = os.environ.get("INTEROP_BIN") or DEFAULT_BIN
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0  # seconds for the server to print its port
WAIT = 5.0  # upper bound for any single wait inside a test
QUIET = 0.3  # how long to wait when checking that something does NOT arrive
STOP_TIMEOUT = 5.0  # SIGTERM, then SIGKILL after this long

PARSERS = {
    "json": {"env": {}, "serializer": "default"},
    "msgpack": {"env": {"PARSER": "msgpack"}, "serializer": "msgpack"},
}
TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"]}


# ---------------------------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------------------------


class Server:
    """The interop binary on an ephemeral port; `port` is known once it printed it."""

    def __init__(self, extra_env):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(
                f"binary not found or not executable at {BIN}; build it with "
                "`cargo build -p interop` or point INTEROP_BIN at it"
            )
        env = dict(os.environ)
        for name in ("PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY"):
            env.pop(name, None)
        env.update(extra_env)
        env["PORT"] = "0"
        self.label = f"{BIN} ({' '.join(f'{k}={v}' for k, v in extra_env.items()) or 'defaults'})"
        self.stdout = ""
        self.stderr_tail = ""
        self.port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [BIN],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT) or self.port is None:
            code = self.proc.poll()
            self.stop()
            why = (
                f"exited (code {code}) before printing its port"
                if code is not None
                else f'did not print "listening on <port>" within {STARTUP_TIMEOUT} s'
            )
            raise RuntimeError(
                f"{self.label} {why}\n--- stdout ---\n{self.stdout}\n"
                f"--- stderr (tail) ---\n{self.stderr_tail}"
            )
        self.url = f"http://{HOST}:{self.port}"

    def _read_stdout(self):
        for line in self.proc.stdout:  # keeps draining after the port, so the pipe never fills
            self.stdout = (self.stdout + line)[-8000:]
            if self.port is None:
                m = re.match(r"^listening on (\d+)\s*$", line)
                if m and 0 < int(m.group(1)) < 65536:
                    self.port = int(m.group(1))
                    self._ready.set()
        self._ready.set()  # EOF: the process is gone

    def _read_stderr(self):
        for line in self.proc.stderr:
            if os.environ.get("E2E_SERVER_LOG"):
                sys.stderr.write(line)
            self.stderr_tail = (self.stderr_tail + line)[-8000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        for reader in self._readers:  # they end at EOF, once the process is gone
            reader.join(STOP_TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        return self.proc.returncode


SERVERS = {}


def setUpModule():
    try:
        for name, parser in PARSERS.items():
            SERVERS[name] = Server(parser["env"])
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    while SERVERS:
        _, server = SERVERS.popitem()
        server.stop()


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


def tag():
    """A unique suffix for room and event names, so that no test sees another test's traffic."""
    return secrets.token_hex(4)


def show(x):
    if isinstance(x, (bytes, bytearray)):
        return f"<{len(x)} bytes>"
    s = repr(x)
    return s if len(s) <= 300 else s[:300] + "..."


class Recorder:
    """A `socketio.Client` for one namespace that records every event it receives from its
    creation on (so that nothing is missed because a waiter came too late), plus its
    connect errors and disconnects."""

    def __init__(self, case, nsp="/", question_answer=None):
        self.case = case
        self.nsp = nsp
        self.label = f"client of {nsp} ({case.parser}, {case.transport})"
        self.sio = socketio.Client(
            reconnection=False,
            serializer=PARSERS[case.parser]["serializer"],
            request_timeout=WAIT,
            handle_sigint=False,
        )
        self.cond = threading.Condition()
        self.inbox = []  # [(event, args)]
        self.connect_errors = []  # the arguments of each `connect_error`
        self.disconnects = []  # reasons
        self.questions = []
        self.sio.on("*", self._on_any, namespace=nsp)
        self.sio.on("connect_error", self._on_connect_error, namespace=nsp)
        self.sio.on("disconnect", self._on_disconnect, namespace=nsp)
        if question_answer is not None:

            def on_question(*args):
                with self.cond:
                    self.questions.append(list(args))
                    self.cond.notify_all()
                return question_answer(*args)  # the return value is the ack

            self.sio.on("question", on_question, namespace=nsp)
        case.addCleanup(self.close)

    def _on_any(self, event, *args):
        with self.cond:
            self.inbox.append((event, list(args)))
            self.cond.notify_all()

    def _on_connect_error(self, *args):
        with self.cond:
            self.connect_errors.append(list(args))
            self.cond.notify_all()

    def _on_disconnect(self, reason=None):
        with self.cond:
            self.disconnects.append(reason)
            self.cond.notify_all()

    def connect(self, auth=None):
        self.sio.connect(
            self.case.server.url,
            auth=auth,
            transports=TRANSPORTS[self.case.transport],
            namespaces=[self.nsp],
            wait_timeout=WAIT,
        )

    def close(self):
        """Disconnects, bounded in time.

        python-engineio's synchronous client (4.15.1) has a race on polling: `disconnect()`
        queues the DISCONNECT and CLOSE packets and sets its state to "disconnecting", and when
        its write loop is between two iterations at that moment (it just POSTed the previous
        packets) it sees the new state and exits without POSTing them. The server never learns
        of the close, so the client's pending long-poll GET, which `disconnect()` joins, only
        returns with the server's next PING (pingInterval, 25 s). Waiting for the send queue to
        drain first makes that window practically unreachable; the bounded join keeps a test
        from hanging if it happens anyway (the thread then ends on its own in the background).
        """
        eio = self.sio.eio
        if self.sio.connected and eio.transport() == "polling":
            deadline = time.monotonic() + 1.0
            while eio.queue.unfinished_tasks and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.02)  # let the write loop get back to waiting on its queue

        def disconnect():
            try:
                self.sio.disconnect()
            except Exception:  # already gone: nothing to release
                pass

        closer = threading.Thread(target=disconnect, daemon=True)
        closer.start()
        closer.join(2.0)
        if closer.is_alive():
            sys.stderr.write(
                f"\nnote: disconnect of {self.label} still waiting after 2 s "
                "(python-engineio polling close race, see Recorder.close)\n"
            )

    def state(self):
        with self.cond:
            return (
                f"{self.label}: connected={self.sio.connected} "
                f"connect_errors={show(self.connect_errors)} disconnects={self.disconnects} "
                f"unread={show(self.inbox)}"
            )

    def until(self, predicate, what, timeout=WAIT):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; {self.state()}")

    def next(self, event, timeout=WAIT):
        """The arguments of the next `event` (waiting for it)."""
        found = []

        def take():
            for i, (name, args) in enumerate(self.inbox):
                if name == event:
                    found.append(args)
                    del self.inbox[i]
                    return True
            return False

        self.until(take, f'"{event}" on {self.label}', timeout)
        return found[0]

    def assert_no(self, event, why=""):
        """Fails if an `event` arrived; call after a quiet period."""
        with self.cond:
            got = [args for name, args in self.inbox if name == event]
        self.case.assertEqual(
            got, [], f'{self.label} must not receive "{event}"{f" ({why})" if why else ""}'
        )

    def call(self, event, *args):
        """Emits `event` with `args` and an ack; returns ALL the ack's arguments as a list."""
        got = []
        done = threading.Event()

        def on_ack(*res):
            got.append(list(res))
            done.set()

        self.sio.emit(event, tuple(args), namespace=self.nsp, callback=on_ack)
        if not done.wait(WAIT):
            raise AssertionError(f'no ack for "{event}" within {WAIT} s; {self.state()}')
        return got[0]


# ---------------------------------------------------------------------------------------------
# Test data and comparisons
# ---------------------------------------------------------------------------------------------

MIXED_ARGS = [
    "hello",
    "",
    "héllo wörld ✓ 🚀 日本語",
    0,
    42,
    -7,
    2**40,
    3.14159,
    -0.5,
    True,
    False,
    None,
    {"a": 1, "b": {"c": [1, 2, {"d": "e"}], "e": None, "f": False, "g": 2.5}, "key with spaces": "v"},
    {},
    [],
    [1, "two", [3, [4, [5]]], {"six": 6}, None],
]

BYTES_ALL = bytes(range(256))
BYTES_BIG = bytes((i * 31 + 7) % 256 for i in range(64 * 1024))


def normalized(x):
    """What a value looks like after a round trip: bytearray -> bytes, tuple -> list."""
    if isinstance(x, bytearray):
        return bytes(x)
    if isinstance(x, (list, tuple)):
        return [normalized(v) for v in x]
    if isinstance(x, dict):
        return {k: normalized(v) for k, v in x.items()}
    return x


def type_mismatch(got, expected, path="args"):
    """The first place where `got` and `expected` differ in type (True vs 1, 1.0 vs 1, bytes vs
    str...), which assertEqual alone does not see; None when the types agree everywhere."""
    if type(got) is not type(expected):
        return f"{path}: {type(got).__name__} {show(got)} instead of {type(expected).__name__}"
    if isinstance(expected, list) and len(got) == len(expected):
        for i, (g, e) in enumerate(zip(got, expected)):
            bad = type_mismatch(g, e, f"{path}[{i}]")
            if bad:
                return bad
    if isinstance(expected, dict) and got.keys() == expected.keys():
        for k in expected:
            bad = type_mismatch(got[k], expected[k], f"{path}[{k!r}]")
            if bad:
                return bad
    return None


# ---------------------------------------------------------------------------------------------
# Scenarios, per parser and transport
# ---------------------------------------------------------------------------------------------


class Scenarios:
    """The scenarios; mixed into one TestCase class per (parser, transport) below."""

    parser = None
    transport = None

    def setUp(self):
        self.server = SERVERS[self.parser]

    def assertSameArgs(self, got, sent, what):
        expected = normalized(sent)
        got = normalized(got)
        self.assertEqual(got, expected, what)
        bad = type_mismatch(got, expected)
        self.assertIsNone(bad, f"{what}: types changed: {bad}")

    def connect(self, nsp="/", auth=None, **kwargs):
        """A connected client of `nsp` (with its `welcome` in `client.welcome`)."""
        client = Recorder(self, nsp, **kwargs)
        client.connect(auth)
        self.assertTrue(client.sio.connected, client.state())
        self.assertEqual(client.sio.transport(), self.transport, "transport in use")
        welcome = client.next("welcome")
        self.assertEqual(len(welcome), 1, f"welcome has one argument: {show(welcome)}")
        client.welcome = welcome[0]
        return client

    def test_connect_with_auth_gets_welcome(self):
        auth = {"user": "py", "n": 7, "nested": {"ok": True, "list": [1, "x", None]}}
        client = self.connect(auth=auth)
        self.assertEqual(set(client.welcome), {"id", "auth"}, show(client.welcome))
        self.assertEqual(client.welcome["id"], client.sio.get_sid("/"), "welcome id is the socket id")
        self.assertSameArgs(client.welcome["auth"], auth, "welcome auth")

    def test_connect_without_auth_gets_empty_auth(self):
        client = self.connect()
        self.assertEqual(client.welcome["auth"], {}, "python-socketio sends {} when there is no auth")
        self.assertIsInstance(client.welcome["id"], str)

    def test_echo_with_ack_mixed_types(self):
        client = self.connect()
        self.assertSameArgs(client.call("echo", *MIXED_ARGS), MIXED_ARGS, "ack of echo")
        # the `call` API, with one argument and with several
        self.assertSameArgs(client.sio.call("echo", "solo", timeout=WAIT), "solo", "call, one arg")
        got = client.sio.call("echo", ("a", 1, None), timeout=WAIT)
        self.assertSameArgs(got, ["a", 1, None], "call, several args")

    def test_echo_without_ack_comes_back_as_event(self):
        client = self.connect()
        client.sio.emit("echo", tuple(MIXED_ARGS))
        self.assertSameArgs(client.next("echo"), MIXED_ARGS, "echo event")
        client.sio.emit("echo", {"only": "one"})
        self.assertSameArgs(client.next("echo"), [{"only": "one"}], "echo event, one argument")

    def test_binary_round_trip(self):
        client = self.connect()
        sent = [
            BYTES_ALL,
            {"nested": {"bin": b"\x00\x01\xff", "list": [b"xyz", "text", BYTES_BIG]}, "n": 1},
            "after",
            b"",
        ]
        self.assertSameArgs(client.call("echo", *sent), sent, "binary ack of echo")
        got = client.sio.call("echo", BYTES_BIG, timeout=WAIT)
        self.assertSameArgs(got, BYTES_BIG, "call with top-level bytes")
        client.sio.emit("echo", ({"bin": BYTES_ALL},))
        self.assertSameArgs(client.next("echo"), [{"bin": BYTES_ALL}], "binary echo event")

    def test_join_and_rooms(self):
        client = self.connect()
        t = tag()
        self.assertEqual(client.call("rooms"), [[]], "no rooms before joining")
        self.assertEqual(client.call("join", f"b-{t}"), [True], "ack of join")
        self.assertEqual(client.call("join", f"a-{t}"), [True], "ack of join")
        self.assertEqual(client.call("rooms"), [[f"a-{t}", f"b-{t}"]], "sorted rooms")
        self.assertEqual(client.call("leave", f"b-{t}"), [True], "ack of leave")
        self.assertEqual(client.call("rooms"), [[f"a-{t}"]], "rooms after leaving")

    def test_to_room_reaches_members(self):
        member = self.connect()
        outsider = self.connect()
        room, event = f"room-{tag()}", f"ev-{tag()}"
        self.assertEqual(member.call("join", room), [True])
        payload = {"hello": "room", "bin": b"\x01\x02", "list": [1, 2.5, None]}
        outsider.sio.emit("to-room", (room, event, payload))
        self.assertSameArgs(member.next(event), [payload], "to-room payload on the member")
        # the sender is included when it is a member
        member.sio.emit("to-room", (room, event, "from-member"))
        self.assertSameArgs(member.next(event), ["from-member"], "to-room from a member")
        time.sleep(QUIET)
        outsider.assert_no(event, "it is not in the room")
        member.assert_no(event, "each to-room arrives once")

    def test_broadcast_reaches_others_not_sender(self):
        sender = self.connect()
        other = self.connect()
        event = f"bc-{tag()}"
        payload = ["x", {"y": [1, None, True]}, b"\x00bin"]
        sender.sio.emit("broadcast", (event, payload))
        self.assertSameArgs(other.next(event), [payload], "broadcast payload on the other client")
        time.sleep(QUIET)
        sender.assert_no(event, "broadcast excludes the sender")
        other.assert_no(event, "a broadcast arrives once")

    def test_private_refused_without_token(self):
        for auth in ({"token": "wrong"}, None):
            with self.subTest(auth=auth):
                client = Recorder(self, "/private")
                with self.assertRaises(socketio.exceptions.ConnectionError) as ctx:
                    client.connect(auth)
                # python-socketio's exception only names the namespace; the server's message
                # and data reach the `connect_error` handler.
                self.assertIn("/private", str(ctx.exception))
                client.until(lambda: client.connect_errors, "connect_error")
                self.assertEqual(
                    client.connect_errors,
                    [[{"message": "unauthorized", "data": {"reason": "bad token"}}]],
                    "connect_error arguments",
                )
                self.assertFalse(client.sio.connected)

    def test_private_admitted_with_token(self):
        client = self.connect("/private", auth={"token": "let-me-in"})
        self.assertEqual(client.welcome, {"id": client.sio.get_sid("/private")}, "welcome of /private")

    def test_dynamic_namespace(self):
        client = self.connect("/tenant-py1")
        self.assertEqual(client.welcome, {"nsp": "/tenant-py1"}, "welcome of a dynamic namespace")

    def test_unknown_namespace_refused(self):
        client = Recorder(self, "/nope-py")
        with self.assertRaises(socketio.exceptions.ConnectionError):
            client.connect()
        client.until(lambda: client.connect_errors, "connect_error")
        self.assertEqual(client.connect_errors, [[{"message": "Invalid namespace"}]], "connect_error arguments")

    def test_ask_answered_by_handler_return_value(self):
        question = {"q": "sum", "n": [1, 2, 3], "bin": b"\x07"}

        def answer(payload):
            return {"answer": sum(payload["n"]), "echo": payload}

        client = self.connect(question_answer=answer)
        got = client.call("ask", question)
        self.assertSameArgs(client.questions, [[question]], "question received by the client")
        self.assertSameArgs(got, [{"answer": 6, "echo": question}], "ack of ask")

    def test_disconnect_me(self):
        client = self.connect()
        client.sio.emit("disconnect-me")
        client.until(lambda: client.disconnects, f"disconnect of {client.label}")
        self.assertEqual(client.disconnects, [client.sio.reason.SERVER_DISCONNECT], "disconnect reason")
        client.until(lambda: not client.sio.connected, "connected == False")


def _make_cases():
    for parser in PARSERS:
        for transport in TRANSPORTS:
            name = f"TestPythonClient_{parser}_{transport}"
            globals()[name] = type(
                name,
                (Scenarios, unittest.TestCase),
                {"parser": parser, "transport": transport, "__module__": __name__},
            )


_make_cases()

if __name__ == "__main__":
    unittest.main()

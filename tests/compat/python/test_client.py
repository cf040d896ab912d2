"""The Python client (clients/python) against the real server binary.

Each test class starts `deltamemory serve --port 0` itself over a fresh
database directory with the tiny test model, reads the port from the
"listening on" line on stderr, and stops the server with SIGTERM at the
end.  The client package is imported from the source tree; one test also
installs it into a fresh virtual environment with pip, offline.

Environment (tests/compat/CMakeLists.txt): DM_CLI, DM_WRITE_TINYMODEL,
DM_TEST_TMPDIR, DM_SOURCE_DIR.

Nothing is skipped: a server without the native API's routes, a missing
environment variable or a `keys create` that does not work fails the
class that needs it, with the reason.
"""

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = (os.environ.get("DM_SOURCE_DIR")
              or os.path.abspath(os.path.join(HERE, "..", "..", "..")))
PKG_DIR = os.path.join(SOURCE_DIR, "clients", "python")
sys.path.insert(0, PKG_DIR)

import deltamemory  # noqa: E402
import deltamemory.client as dmclient  # noqa: E402
from deltamemory import (  # noqa: E402
    AsyncMemoryClient,
    AuthenticationError,
    DeltaMemoryError,
    MemoryClient,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ValidationError,
)

DM_CLI = os.environ.get("DM_CLI")
DM_WRITE_TINYMODEL = os.environ.get("DM_WRITE_TINYMODEL")
TMP_ROOT = os.environ.get("DM_TEST_TMPDIR") or tempfile.gettempdir()
START_TIMEOUT_S = 90  # the sanitizer build opens a database slowly

_model_path = None


def scratch(name):
    """A fresh directory under the test scratch root."""
    os.makedirs(TMP_ROOT, exist_ok=True)
    return tempfile.mkdtemp(prefix="compat_python_%s_" % name, dir=TMP_ROOT)


def model_path():
    """The tiny model, written once per test run."""
    global _model_path
    if _model_path is None:
        if not DM_WRITE_TINYMODEL:
            raise AssertionError("DM_WRITE_TINYMODEL is not set (run through ctest)")
        path = os.path.join(scratch("model"), "tiny.dmm")
        subprocess.run([DM_WRITE_TINYMODEL, path], check=True, timeout=60)
        _model_path = path
    return _model_path


class Server:
    """A `deltamemory serve` process on a free port."""

    def __init__(self, data_dir, *args):
        if not DM_CLI:
            raise AssertionError("DM_CLI is not set (run through ctest)")
        self.data_dir = data_dir
        self.stderr = []
        self.proc = subprocess.Popen(
            [DM_CLI, "--data", data_dir, "--model", model_path(), "serve", "--port", "0"]
            + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        found = threading.Event()
        self.port = None

        def pump():
            for line in self.proc.stderr:
                self.stderr.append(line)
                m = re.search(r"listening on http://[^:\s]+:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    found.set()
            found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        found.wait(START_TIMEOUT_S)
        if self.port is None:
            self.stop()
            raise AssertionError("the server did not start:\n" + "".join(self.stderr))
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._pump.join(5)
        return self.proc.returncode


def raw(url, method="GET", body=None, key=None):
    """(status, decoded JSON body) of one request made without the client,
    to check that the client reports exactly what the server said."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def native_missing(url):
    """Why the class cannot run when this server build has no native API
    routes (then it fails); None when they are there."""
    status, body = raw(url + "/v1/users/probe/memories")
    err = body.get("error") if isinstance(body, dict) else None
    if (status == 404 and isinstance(err, dict)
            and str(err.get("message", "")).startswith("no route")):
        return ("the server has no native API routes yet (GET /v1/users/{user}/memories "
                "answers: %s)" % err.get("message"))
    return None


def hits_or_none(client, query, user):
    """The hits of a search, [] when the server does not know the user."""
    try:
        return client.search(query, user_id=user)["results"]
    except NotFoundError:
        return []


_shared = None


def shared_server():
    """The server of the classes that need no special settings, started
    once for the module (each class works on users of its own)."""
    global _shared
    if _shared is None:
        d = scratch("shared")
        _shared = Server(os.path.join(d, "db"))
        _shared.scratch = d
    return _shared


def stop_server(server):
    rc = server.stop()
    if rc not in (0, None, -signal.SIGTERM):
        raise AssertionError("the server exited with %s:\n%s" % (rc, "".join(server.stderr)))


def tearDownModule():
    try:
        if _shared is not None:
            try:
                stop_server(_shared)
            finally:
                shutil.rmtree(_shared.scratch, ignore_errors=True)
    finally:
        if _model_path is not None:
            shutil.rmtree(os.path.dirname(_model_path), ignore_errors=True)


class ServerCase(unittest.TestCase):
    """A server and a client for the class: the module's shared server, or
    one of its own when server_args asks for other settings.  needs_native
    fails the class when the native routes are absent."""

    needs_native = True
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.dir = None
        if cls.server_args:
            cls.dir = scratch(cls.__name__)
            cls.server = Server(os.path.join(cls.dir, "db"), *cls.server_args)
        else:
            cls.server = shared_server()
        cls.client = MemoryClient(cls.server.url, timeout=60)
        if cls.needs_native:
            why = native_missing(cls.server.url)
            if why:
                cls.tearDownClass()
                raise AssertionError(why)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        if cls.dir is not None:
            try:
                stop_server(cls.server)
            finally:
                shutil.rmtree(cls.dir, ignore_errors=True)


# ------------------------------------------------- transport, no native API

class TestTransport(ServerCase):
    needs_native = False

    def test_health(self):
        h = self.client.health()
        self.assertIs(h["healthy"], True)
        self.assertEqual(h["version"], deltamemory.__version__)
        self.assertEqual(h["status"], "ok")

    def test_keep_alive_reuses_one_connection(self):
        c = MemoryClient(self.server.url)
        try:
            c.health()
            self.assertEqual(len(c._idle), 1)
            conn = c._idle[0]
            sock = conn.sock
            self.assertIsNotNone(sock)
            for _ in range(5):
                c.health()
            self.assertEqual(len(c._idle), 1)
            self.assertIs(c._idle[0], conn)
            self.assertIs(conn.sock, sock)  # the same TCP connection all along
        finally:
            c.close()
        self.assertEqual(c._idle, [])
        # Usable again after close: a new connection is opened.
        self.assertTrue(c.health()["healthy"])
        c.close()

    def test_stale_connection_is_replaced(self):
        c = MemoryClient(self.server.url)
        try:
            c.health()
            # As if the server had dropped it while it sat idle in the pool.
            c._idle[0].sock.shutdown(socket.SHUT_RDWR)
            self.assertTrue(c.health()["healthy"])
        finally:
            c.close()

    def test_metrics_count_the_calls(self):
        before = self.client.metrics()
        self.client.health()
        after = self.client.metrics()

        def count(text):
            m = re.search(r'deltamemory_http_requests_total\{route="health",code="2xx"\} (\d+)',
                          text)
            return int(m.group(1)) if m else 0

        self.assertIn("# TYPE deltamemory_http_requests_total counter", after)
        self.assertEqual(count(after), count(before) + 1)

    def test_unknown_route_is_not_found_with_the_servers_words(self):
        status, body = raw(self.server.url + "/v1/no/such/route")
        self.assertEqual(status, 404)
        with self.assertRaises(NotFoundError) as cm:
            self.client._request("GET", "/v1/no/such/route")
        e = cm.exception
        self.assertEqual(e.status, 404)
        self.assertEqual(e.code, body["error"]["code"])
        self.assertEqual(e.message, body["error"]["message"])
        self.assertIn("/v1/no/such/route", str(e))

    def test_method_not_allowed_keeps_the_dialects_code(self):
        # /v1/health answers in the DeltaMemory SDK dialect {"error", "code"}.
        status, body = raw(self.server.url + "/v1/health", method="DELETE")
        self.assertEqual(status, 405)
        with self.assertRaises(DeltaMemoryError) as cm:
            self.client._request("DELETE", "/v1/health")
        self.assertEqual(cm.exception.status, 405)
        self.assertEqual(cm.exception.code, body["code"])
        self.assertEqual(cm.exception.message, body["error"])

    def test_unreachable_server_is_a_connection_error(self):
        c = MemoryClient("http://127.0.0.1:1", timeout=5)
        with self.assertRaises(deltamemory.ConnectionError) as cm:
            c.health()
        self.assertIsInstance(cm.exception, ConnectionError)  # the built-in one too
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "CONNECTION_ERROR")

    def test_client_side_argument_errors(self):
        with self.assertRaises(ValidationError) as cm:
            self.client.update("x", "u")
        self.assertEqual(cm.exception.field, "text")
        with self.assertRaises(ValidationError) as cm:
            self.client.get_all()
        self.assertEqual(cm.exception.field, "user_id")

    def test_async_health_and_errors(self):
        async def main():
            async with AsyncMemoryClient(self.server.url) as a:
                hs = await asyncio.gather(*[a.health() for _ in range(6)])
                with self.assertRaises(NotFoundError):
                    await a._run(self.client._request, "GET", "/v1/nowhere")
                return hs

        hs = asyncio.run(main())
        self.assertEqual(len(hs), 6)
        self.assertTrue(all(h["healthy"] for h in hs))

    def test_times_are_sent_as_iso_utc(self):
        iso = dmclient._iso
        self.assertEqual(iso(dt.datetime(2023, 5, 8, 12, 0, 0)), "2023-05-08T12:00:00Z")
        self.assertEqual(iso(dt.date(2023, 5, 8)), "2023-05-08T00:00:00Z")
        self.assertEqual(iso(1683547200), "2023-05-08T12:00:00Z")
        tz = dt.timezone(dt.timedelta(hours=2))
        self.assertEqual(iso(dt.datetime(2023, 5, 8, 14, 0, 0, 5, tzinfo=tz)),
                         "2023-05-08T12:00:00.000005Z")
        self.assertEqual(iso("2023-05-08"), "2023-05-08")


# -------------------------------------------------------------- package

class TestPackage(unittest.TestCase):
    def test_pip_install_offline_into_a_fresh_venv(self):
        base = scratch("venv")
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PYTHONDONTWRITEBYTECODE="1", PIP_NO_CACHE_DIR="1")
        # Without network access: the documented command (no build
        # isolation, the system's pip through --system-site-packages), and
        # plain `pip install DIR`, whose isolated build must need nothing.
        cases = [("no_isolation", ["--no-build-isolation"]), ("isolated", [])]
        try:
            for name, extra in cases:
                with self.subTest(name):
                    venv = os.path.join(base, name)
                    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                                    "--without-pip", venv], check=True, timeout=120)
                    py = os.path.join(venv, "bin", "python")
                    p = subprocess.run([py, "-m", "pip", "install", "--no-index"] + extra
                                       + [PKG_DIR], env=env, capture_output=True, text=True,
                                       timeout=120)
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    p = subprocess.run(
                        [py, "-c", "import deltamemory, sys; "
                         "print(deltamemory.__file__); print(deltamemory.__version__); "
                         "print(deltamemory.MemoryClient().host)"],
                        cwd=base, env=env, capture_output=True, text=True, timeout=60)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    where, version, host = p.stdout.split("\n")[:3]
                    self.assertTrue(where.startswith(os.path.realpath(venv))
                                    or where.startswith(venv), where)
                    self.assertEqual(version, deltamemory.__version__)
                    self.assertEqual(host, "http://127.0.0.1:6969")
            # The build must leave the source tree as it was.
            self.assertFalse(os.path.exists(os.path.join(PKG_DIR, "build")))
            self.assertFalse([d for d in os.listdir(PKG_DIR) if d.endswith(".egg-info")])
        finally:
            shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------- native API calls

class TestMemories(ServerCase):
    def test_add_search_get_update_delete(self):
        c = self.client
        food = "I had pizza and pasta with cheese for dinner."
        r = c.add(food, user_id="ann", metadata={"topic": "food"}, infer=False)
        self.assertEqual(len(r["results"]), 1)
        hit = r["results"][0]
        self.assertEqual(hit["event"], "ADD")
        self.assertEqual(hit["memory"], food)
        fid = hit["id"]
        self.assertIsInstance(fid, str)
        pid = c.add("My dog and cat went to the vet.", user_id="ann", infer=False)[
            "results"][0]["id"]
        self.assertNotEqual(fid, pid)

        s = c.search("pizza dinner", user_id="ann", limit=5)
        self.assertGreaterEqual(len(s["results"]), 1)
        top = s["results"][0]
        self.assertEqual(top["id"], fid)
        self.assertEqual(top["memory"], food)
        self.assertEqual(top["metadata"], {"topic": "food"})
        self.assertIsInstance(top["score"], float)
        self.assertTrue(top["created_at"])
        self.assertEqual(top["user_id"], "ann")
        # A metadata filter keeps only what matches; the limit is kept.
        s = c.search("dog vet", user_id="ann", filters={"topic": "food"})
        self.assertEqual([h["id"] for h in s["results"]], [fid])
        self.assertLessEqual(len(c.search("dinner", user_id="ann", limit=1)["results"]), 1)
        # Another user does not see ann's memories.
        self.assertEqual(hits_or_none(c, "pizza dinner", "bob"), [])

        g = c.get(fid, "ann")
        self.assertEqual((g["id"], g["memory"], g["text"]), (fid, food, food))
        self.assertEqual(g["metadata"], {"topic": "food"})
        with self.assertRaises(NotFoundError):
            c.get(fid, "bob")

        new = "I had soup and salad for lunch."
        u = c.update(fid, "ann", text=new, metadata={"topic": "food", "v": 2})
        self.assertEqual(u["memory"], new)
        g = c.get(fid, "ann")
        self.assertEqual(g["memory"], new)
        self.assertEqual(g["metadata"], {"topic": "food", "v": 2})
        self.assertEqual(c.search("soup salad lunch", user_id="ann")["results"][0]["id"], fid)

        d = c.delete(fid, "ann")
        self.assertTrue(d["message"])
        with self.assertRaises(NotFoundError):
            c.get(fid, "ann")
        self.assertNotIn(fid, [h["id"] for h in c.search("soup salad", user_id="ann")["results"]])

    def test_agent_only_memories_belong_to_the_agent_user(self):
        c = self.client
        r = c.add("The user likes pizza.", agent_id="helper", infer=False)
        mid = r["results"][0]["id"]
        g = c.get(mid, agent_id="helper")
        self.assertEqual(g["user_id"], "agent:helper")
        self.assertEqual(g["agent_id"], "helper")
        ids = [h["id"] for h in c.search("pizza", agent_id="helper")["results"]]
        self.assertIn(mid, ids)

    def test_get_all_pages_and_limits(self):
        c = self.client
        msgs = [{"role": "user", "content": "note number %d about cooking rice" % i}
                for i in range(7)]
        r = c.add(msgs, user_id="pager", run_id="p1", infer=False, metadata={"n": 1})
        self.assertEqual(len(r["results"]), 7)
        self.assertEqual(r["session_id"], "p1")
        ids = {x["id"] for x in r["results"]}
        old = dmclient._PAGE
        dmclient._PAGE = 3  # force several pages
        try:
            every = c.get_all("pager", limit=None)["results"]
            five = c.get_all("pager", limit=5)["results"]
            in_p1 = c.get_all("pager", run_id="p1", limit=None)["results"]
            in_p2 = c.get_all("pager", run_id="p2", limit=None)["results"]
        finally:
            dmclient._PAGE = old
        self.assertEqual({m["id"] for m in every}, ids)
        self.assertEqual(len(every), 7)
        self.assertEqual(len(five), 5)
        self.assertTrue({m["id"] for m in five} <= ids)
        self.assertEqual(len(in_p1), 7)
        self.assertEqual(in_p2, [])
        self.assertTrue(all(m["run_id"] == "p1" and m["metadata"] == {"n": 1} for m in every))

    def test_delete_all_erases_the_user(self):
        c = self.client
        c.add("I like pizza.", user_id="gone", infer=False)
        c.add("I like pasta.", user_id="gone", infer=False)
        r = c.delete_all("gone")
        self.assertGreaterEqual(r["erased"], 2)
        self.assertEqual(r["user_id"], "gone")
        try:
            left = c.get_all("gone")["results"]
        except NotFoundError:
            left = []  # an erased user may be unknown altogether
        self.assertEqual(left, [])

    def test_errors_carry_the_servers_code_message_and_field(self):
        c = self.client
        mid = c.add("I like bread.", user_id="err", infer=False)["results"][0]["id"]
        # A well-formed id that does not exist: the last digit changed.
        last = mid[-1]
        other = mid[:-1] + ("0" if last != "0" else "1")
        status, body = raw("%s/v1/memories/%s?user_id=err" % (self.server.url, other))
        self.assertEqual(status, 404)
        with self.assertRaises(NotFoundError) as cm:
            c.get(other, "err")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message),
                         (404, body["error"]["code"], body["error"]["message"]))
        # An argument out of range names its field.
        status, body = raw(self.server.url + "/v1/search", "POST",
                           {"user_id": "err", "query": "bread", "k": -1})
        with self.assertRaises(ValidationError) as cm:
            c.search("bread", user_id="err", limit=-1)
        e = cm.exception
        self.assertIn(e.status, (400, 422))
        self.assertEqual(e.status, status)
        self.assertEqual(e.field, "k")
        self.assertEqual((e.code, e.message, e.field),
                         (body["error"]["code"], body["error"]["message"],
                          body["error"].get("field")))
        # A missing required argument.
        with self.assertRaises(ValidationError) as cm:
            c.add("no user here")
        self.assertEqual(cm.exception.field, "user_id")
        # A text over the server's limit (32 KiB by default).
        with self.assertRaises(PayloadTooLargeError) as cm:
            c.add("pizza " * 12000, user_id="err")
        self.assertEqual(cm.exception.status, 413)


class TestKnowledge(ServerCase):
    MONDAY = "2023-05-08T12:00:00Z"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        cls.turn = c.add([{"role": "user", "content": "I live in Austin."}],
                         user_id="kim", run_id="s1", timestamp=cls.MONDAY)
        c.add([{"role": "user", "content": "I went hiking last Saturday."}],
              user_id="kim", run_id="s1", timestamp=cls.MONDAY)
        c.add([{"role": "user", "content": "I work at Acme Corp."}],
              user_id="kim", run_id="s1", timestamp=cls.MONDAY)

    def test_messages_are_stored_in_the_session(self):
        r = self.turn
        self.assertEqual(r["session_id"], "s1")
        self.assertEqual(len(r["results"]), 1)
        self.assertEqual(r["results"][0]["memory"], "I live in Austin.")
        self.assertGreaterEqual(r["facts_added"], 1)
        m = self.client.get(r["results"][0]["id"], "kim")
        self.assertEqual((m["session_id"], m["role"]), ("s1", "user"))
        self.assertTrue(m["time"].startswith("2023-05-08T12:00:00"))

    def test_add_without_run_id_makes_a_session(self):
        r = self.client.add([{"role": "user", "content": "We had pasta."}], user_id="sess")
        self.assertTrue(r["session_id"])
        m = self.client.get(r["results"][0]["id"], "sess")
        self.assertEqual(m["session_id"], r["session_id"])

    def city(self, facts):
        return [f for f in facts if f.get("slot") == "location.city"]

    def test_profile_and_context(self):
        facts = self.city(self.client.profile("kim")["facts"])
        self.assertEqual([f["value"] for f in facts], ["Austin"])
        ctx = self.client.context("kim", "s1", query="where do I live?")
        self.assertEqual([f["value"] for f in self.city(ctx["profile"])], ["Austin"])
        self.assertIn("Austin", ctx["context"])
        self.assertIsInstance(ctx["memories"], list)
        self.assertIsInstance(ctx["recent"], list)
        # as_of before anything was said: no city yet.
        old = self.client.profile("kim", as_of="2020-01-01T00:00:00Z")["facts"]
        self.assertEqual(self.city(old), [])

    def test_fact_history(self):
        fact = self.city(self.client.profile("kim")["facts"])[0]
        h = self.client.history(fact["id"], "kim")
        self.assertGreaterEqual(len(h), 1)
        self.assertEqual(h[0]["event"], "ADD")
        self.assertEqual(h[0]["new_memory"], "Austin")
        self.assertIsNone(h[0]["old_memory"])
        self.assertEqual(h[0]["memory_id"], fact["id"])
        with self.assertRaises(NotFoundError):
            self.client.history(fact["id"], "nobody")
        # A memory's history: the fact changes it caused.
        mh = self.client.history(self.turn["results"][0]["id"], "kim")
        city = [x for x in mh if x["slot"] == "location.city"]
        self.assertEqual([(x["event"], x["new_memory"]) for x in city], [("ADD", "Austin")])

    def test_events(self):
        ev = self.client.events("kim")["events"]
        hikes = [e for e in ev if "hiking" in e["what"]]
        self.assertEqual(len(hikes), 1, ev)
        self.assertTrue(hikes[0]["from"].startswith("2023-05-06"))
        # A window that ends before it: none.
        ev = self.client.events("kim", start="2023-01-01T00:00:00Z",
                                end=dt.datetime(2023, 2, 1))["events"]
        self.assertEqual([e for e in ev if "hiking" in e["what"]], [])

    def test_graph(self):
        g = self.client.graph("kim", "Acme Corp", depth=1)
        names = [n["name"] for n in g["nodes"]]
        self.assertIn("user", names)
        self.assertIsInstance(g["edges"], list)
        self.assertGreaterEqual(len(g["edges"]), 1)

    def test_chat_without_a_model_returns_the_context(self):
        r = self.client.chat("kim", "s1", "Which city do I live in?")
        self.assertIsNone(r["reply"])
        self.assertIn("context", r)


class TestExportImport(ServerCase):
    def test_export_import_round_trip(self):
        c = self.client
        texts = ["I baked bread on Sunday.", "My cat chased the dog.",
                 "We booked a hotel near the airport."]
        for i, t in enumerate(texts):
            c.add(t, user_id="src", metadata={"i": i}, infer=False,
                  timestamp=dt.datetime(2024, 1, 1 + i, 9, 30))
        exported = list(c.export("src"))
        self.assertEqual(sorted(m["text"] for m in exported), sorted(texts))
        for m in exported:
            self.assertEqual(m["user_id"], "src")
            self.assertIsInstance(m["embedding"], list)
            self.assertGreater(len(m["embedding"]), 0)
        r = c.import_("dst", exported, batch_size=2)  # two batches
        self.assertEqual(r["imported"], 3)
        back = {m["text"]: m for m in c.export("dst")}
        self.assertEqual(set(back), set(texts))
        for m in exported:
            b = back[m["text"]]
            self.assertEqual(b["user_id"], "dst")
            for k in ("time", "metadata", "embedding", "salience", "kind", "role"):
                self.assertEqual(b[k], m[k], k)
        # The copy is searchable like the original.
        self.assertEqual(c.search("bread baked", user_id="dst")["results"][0]["memory"],
                         texts[0])
        # An export read only in part ends cleanly and the client goes on.
        with c.export("dst") as s:
            self.assertIn(next(s)["text"], texts)
        self.assertTrue(c.health()["healthy"])

    def test_export_of_an_unknown_user(self):
        try:
            self.assertEqual(list(self.client.export("never-seen")), [])
        except NotFoundError as e:
            self.assertEqual(e.status, 404)


class TestAsync(ServerCase):
    def test_async_calls(self):
        url = self.server.url

        async def main():
            async with AsyncMemoryClient(url) as a:
                r = await a.add("I cooked noodles and rice for lunch.", user_id="asy",
                                infer=False)
                mid = r["results"][0]["id"]
                searches = await asyncio.gather(
                    *[a.search("noodles rice", user_id="asy") for _ in range(4)])
                got = await a.get(mid, "asy")
                rows = [m async for m in await a.export("asy")]
                await a.delete(mid, "asy")
                with self.assertRaises(NotFoundError):
                    await a.get(mid, "asy")
                return mid, searches, got, rows

        mid, searches, got, rows = asyncio.run(main())
        for s in searches:
            self.assertEqual(s["results"][0]["id"], mid)
        self.assertEqual(got["memory"], "I cooked noodles and rice for lunch.")
        self.assertEqual([m["id"] for m in rows], [mid])


class TestRateLimit(ServerCase):
    server_args = ("--rate", "2", "--rate-burst", "1")

    def test_429_is_raised_then_retried(self):
        time.sleep(1.2)  # the bucket refills after the probe of setUpClass
        c0 = MemoryClient(self.server.url, max_retries=0)
        try:
            c0.stats()
            with self.assertRaises(RateLimitError) as cm:
                c0.stats()
            self.assertEqual(cm.exception.status, 429)
            self.assertEqual(cm.exception.retry_after, 1.0)
            # With retries the client waits as told and gets through.
            c3 = MemoryClient(self.server.url, max_retries=3)
            self.assertIsInstance(c3.stats(), dict)
            self.assertIsInstance(c3.stats(), dict)
            c3.close()
        finally:
            c0.close()


class TestAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not DM_CLI:
            raise AssertionError("DM_CLI is not set (run through ctest)")
        cls.dir = scratch("auth")
        db = os.path.join(cls.dir, "db")
        cls.keys = []
        for tenant in ("t", "t2"):
            p = subprocess.run([DM_CLI, "--data", db, "keys", "create", "--tenant", tenant,
                                "--json"], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                shutil.rmtree(cls.dir, ignore_errors=True)
                raise AssertionError(
                    "`deltamemory keys create --tenant t --json` does not work in this "
                    "build, so no server with an API key can be made: %s"
                    % (p.stderr.strip() or "exit %d" % p.returncode))
            cls.keys.append(cls.secret(json.loads(p.stdout)))
        cls.server = Server(db)
        why = native_missing(cls.server.url)
        if why:
            cls.tearDownClass()
            raise AssertionError(why)

    @staticmethod
    def secret(doc):
        """The secret in the command's JSON (a "dm_..." string)."""
        for k in ("secret", "key", "api_key"):
            if isinstance(doc.get(k), str) and doc[k].startswith("dm_"):
                return doc[k]
        for v in doc.values():
            if isinstance(v, str) and v.startswith("dm_"):
                return v
        raise AssertionError("no secret in %r" % (doc,))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_keys(self):
        url = self.server.url
        good, other = self.keys
        with MemoryClient(url, api_key=good) as c:
            mid = c.add("I like pizza.", user_id="ann", infer=False)["results"][0]["id"]
            self.assertEqual(c.get(mid, "ann")["memory"], "I like pizza.")
        # Health is public.
        with MemoryClient(url, api_key="") as c:
            self.assertTrue(c.health()["healthy"])
        for key, code in (("", "MISSING_API_KEY"), ("dm_000000000000_wrong", "INVALID_API_KEY")):
            status, body = raw(url + "/v1/memories/%s?user_id=ann" % mid, key=key)
            self.assertEqual(status, 401)
            with MemoryClient(url, api_key=key) as c:
                with self.assertRaises(AuthenticationError) as cm:
                    c.get(mid, "ann")
            e = cm.exception
            self.assertEqual(e.status, 401)
            self.assertEqual(e.code, body["error"]["code"])
            self.assertEqual(e.code.upper(), code)
            self.assertEqual(e.message, body["error"]["message"])
        # Another tenant's key does not see the memory, whatever the id.
        with MemoryClient(url, api_key=other) as c:
            with self.assertRaises(NotFoundError):
                c.get(mid, "ann")
            self.assertEqual(hits_or_none(c, "pizza", "ann"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""MemoryClient: the synchronous client of the DeltaMemory server.

It speaks the server's native API (docs/api.md, "Native API") and shapes
what it returns the way Mem0's clients do, so that code written for Mem0
moves over with few changes: add() returns {"results": [{"id", "memory",
"event"}]}, search() and get_all() return {"results": [memory, ...]} where
each memory carries Mem0's keys (memory, created_at, updated_at, run_id)
next to the server's own (text, time, record_time, session_id, ...).

Transport.  Only the standard library: http.client over a small pool of
persistent connections (HTTP/1.1 keep-alive), so a sequence of calls pays
for one TCP handshake.  A connection is taken from the pool for one request
and given back once its response has been read to the end; the pool makes
the client safe to share between threads (each thread gets its own
connection while the call runs).  A request that fails on a reused
connection before any response arrives (the server closed an idle
connection) is sent again once on a fresh connection; nothing else is
retried except a 429, which the server answers before doing anything, and
which is retried after the wait it asks for, max_retries times.

Errors.  Every error response is raised as a DeltaMemoryError subclass
(errors.py) carrying the server's code, message and field; network
failures and timeouts as deltamemory.ConnectionError.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import os
import socket
import threading
import time as _time
import uuid
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Union
from urllib.parse import quote, urlencode, urlsplit

from . import errors as _errors
from .errors import DeltaMemoryError, ValidationError, error_from_response

__all__ = ["MemoryClient", "DEFAULT_HOST", "ExportStream"]

DEFAULT_HOST = "http://127.0.0.1:6969"
_VERSION = "0.1.0"
_PAGE = 100            # memories per page when get_all pages through a user
_MAX_BATCH = 1000      # the server's default max_batch
_RETRY_WAIT_CAP_S = 30.0

# Keys add to a memory so that it reads like a Mem0 memory; import_ strips
# them again (with the per-hit search scores) before sending memories back.
_MEM0_KEYS = ("memory", "created_at", "updated_at", "run_id")
_HIT_KEYS = ("score", "vector_sim", "bm25", "vector_rank", "bm25_rank", "explain")

TimeLike = Union[str, int, float, _dt.datetime, _dt.date, None]


# --------------------------------------------------------------- helpers

def _seg(value: Any, field: str) -> str:
    """One path segment, percent-encoded (a "/" in an id stays inside it).
    A missing one is refused here: the path could not be formed."""
    if value is None or value == "":
        raise ValidationError("INVALID_ARGUMENT", "%s is required" % field, None, field)
    return quote(str(value), safe="")


def _iso(value: TimeLike) -> Optional[str]:
    """A time as the ISO 8601 UTC text the server reads.  Naive datetimes are
    taken as UTC; numbers are seconds since the epoch; strings pass as they
    are (the server checks them)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValidationError("INVALID_ARGUMENT", "a time cannot be a boolean", None, None)
    if isinstance(value, (int, float)):
        value = _dt.datetime.fromtimestamp(float(value), tz=_dt.timezone.utc)
    elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    if not isinstance(value, _dt.datetime):
        raise ValidationError(
            "INVALID_ARGUMENT",
            "a time must be an ISO 8601 string, a datetime, a date or epoch seconds",
            None, None)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    value = value.astimezone(_dt.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(fmt)


def _compact(d: Mapping[str, Any]) -> Dict[str, Any]:
    """The mapping without its None values (absent and null mean the same to
    the server, but absent keeps bodies small and strict mode quiet)."""
    return {k: v for k, v in d.items() if v is not None}


def _user(user_id: Optional[str], agent_id: Optional[str]) -> Optional[str]:
    """The server's user for Mem0's entity ids: a memory with only an agent
    id belongs to the user "agent:<agent_id>"."""
    if user_id:
        return user_id
    if agent_id:
        return "agent:" + agent_id
    return None


def _mem0(m: Any) -> Any:
    """A server memory with Mem0's keys added (nothing removed)."""
    if not isinstance(m, dict):
        return m
    out = dict(m)
    out.setdefault("memory", m.get("text"))
    out.setdefault("created_at", m.get("time"))
    out.setdefault("updated_at", m.get("record_time"))
    out.setdefault("run_id", m.get("session_id"))
    return out


def _chunks(items: List[Any], n: int) -> Iterator[List[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class _Response:
    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.data = data


def _decode(data: bytes, content_type: str) -> Any:
    if not data:
        return {}
    text = data.decode("utf-8", errors="replace")
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


# The errors of a connection the server closed while it sat idle in the
# pool: the request never reached a handler, so sending it again is safe.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          ConnectionAbortedError, http.client.CannotSendRequest)


class ExportStream:
    """The memories of an export, one dict per line of the server's stream,
    decoded as they arrive.  Iterate it once; close() (or leaving a with
    block) ends the transfer early.  A stream cut short by the server or the
    network raises deltamemory.ConnectionError rather than ending quietly,
    so a partial export is never mistaken for a whole one."""

    def __init__(self, client: "MemoryClient", conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse) -> None:
        self._client = client
        self._conn: Optional[http.client.HTTPConnection] = conn
        self._resp = resp
        self.count = 0

    def __iter__(self) -> "ExportStream":
        return self

    def __next__(self) -> Dict[str, Any]:
        if self._conn is None:
            raise StopIteration
        while True:
            try:
                line = self._resp.readline()
            except (OSError, http.client.HTTPException) as e:
                self._finish(False)
                raise _errors.ConnectionError("the export stream broke: %s" % (e,), e) from e
            if not line:
                self._finish(True)
                raise StopIteration
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                self._finish(False)
                raise DeltaMemoryError("BAD_RESPONSE",
                                       "line %d of the export is not JSON: %s"
                                       % (self.count + 1, e)) from e
            self.count += 1
            return obj

    def _finish(self, is_whole: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if is_whole and not self._resp.will_close:
            self._client._release(conn)
        else:
            conn.close()

    def close(self) -> None:
        self._finish(False)

    def __enter__(self) -> "ExportStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------- client

class MemoryClient:
    """A client of one DeltaMemory server.

    Args:
        host: the server's base URL, "http://127.0.0.1:6969" by default (or
            $DELTAMEMORY_URL).  A path after the host ("https://x/memory")
            is kept as a prefix of every route.
        api_key: sent as X-API-Key; $DELTAMEMORY_API_KEY when not given.  A
            server without keys ignores it.
        timeout: seconds for connecting and for each read.
        max_retries: how many times a 429 is retried after its Retry-After.
        max_connections: persistent connections kept open for reuse.
        headers: extra headers for every request.
    """

    def __init__(
        self,
        host: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_connections: int = 8,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        host = host or os.environ.get("DELTAMEMORY_URL") or DEFAULT_HOST
        if "://" not in host:
            host = "http://" + host
        u = urlsplit(host)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("host must be an http:// or https:// URL, not %r" % (host,))
        self.host = host.rstrip("/")
        self._scheme = u.scheme
        self._hostname = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._prefix = u.path.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("DELTAMEMORY_API_KEY")
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self._max_idle = max(1, int(max_connections))
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._headers = {
            "User-Agent": "deltamemory-python/" + _VERSION,
            "Accept": "application/json",
        }
        if headers:
            self._headers.update(headers)
        if self.api_key:
            self._headers["X-API-Key"] = self.api_key

    def __repr__(self) -> str:
        return "MemoryClient(host=%r)" % (self.host,)

    # ---------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the pooled connections.  The client stays usable: a later
        call opens a new connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def __enter__(self) -> "MemoryClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------- transport

    def _new_conn(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._hostname, self._port, timeout=self.timeout)
        return http.client.HTTPConnection(self._hostname, self._port, timeout=self.timeout)

    def _acquire(self) -> "tuple[http.client.HTTPConnection, bool]":
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new_conn(), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _url(self, path: str, query: Optional[Mapping[str, Any]]) -> str:
        url = self._prefix + path
        if query:
            q = []
            for k, v in query.items():
                if v is None or v is False:
                    continue
                q.append((k, "true" if v is True else str(v)))
            if q:
                url += "?" + urlencode(q)
        return url

    def _send(self, method: str, url: str, data: Optional[bytes],
              content_type: Optional[str]) -> "tuple[http.client.HTTPConnection, Any]":
        """Send one request and return its connection and response (headers
        read, body not).  Retries once on a stale pooled connection."""
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = content_type or "application/json"
        for attempt in (0, 1):
            conn, is_reused = self._acquire()
            try:
                conn.request(method, url, body=data, headers=headers)
                return conn, conn.getresponse()
            except _STALE as e:
                conn.close()
                if is_reused and attempt == 0:
                    continue
                raise _errors.ConnectionError(
                    "%s %s: the connection to %s broke: %s" % (method, url, self.host, e), e) from e
            except socket.timeout as e:
                conn.close()
                raise _errors.ConnectionError(
                    "%s %s: no answer from %s within %gs" % (method, url, self.host, self.timeout),
                    e) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise _errors.ConnectionError(
                    "%s %s: cannot reach %s: %s" % (method, url, self.host, e), e) from e
        raise AssertionError("unreachable")

    def _read(self, method: str, url: str, conn: http.client.HTTPConnection,
              resp: http.client.HTTPResponse) -> _Response:
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _errors.ConnectionError(
                "%s %s: the response from %s broke: %s" % (method, url, self.host, e), e) from e
        if resp.will_close:
            conn.close()
        else:
            self._release(conn)
        return _Response(resp.status, resp.headers, data)

    def _raise_for(self, r: _Response) -> None:
        body = _decode(r.data, r.headers.get("Content-Type", ""))
        raise error_from_response(r.status, body, r.headers)

    def _request(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
                 body: Any = None) -> Any:
        """One call: the decoded JSON answer, or a DeltaMemoryError."""
        url = self._url(path, query)
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            conn, resp = self._send(method, url, data, None)
            r = self._read(method, url, conn, resp)
            if r.status == 429 and attempt < self.max_retries:
                err = error_from_response(r.status, _decode(r.data, ""), r.headers)
                wait = getattr(err, "retry_after", None)
                _time.sleep(min(wait if wait is not None else 1.0, _RETRY_WAIT_CAP_S))
                continue
            if r.status >= 400:
                self._raise_for(r)
            return _decode(r.data, r.headers.get("Content-Type", ""))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ memories

    def add(
        self,
        messages: Union[str, Mapping[str, Any], Iterable[Mapping[str, Any]]],
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        run_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        infer: bool = True,
        *,
        timestamp: TimeLike = None,
        kind: Optional[str] = None,
        salience: Optional[float] = None,
        role: Optional[str] = None,
        wait: bool = True,
    ) -> Dict[str, Any]:
        """Remember a text or a conversation.

        A string is stored as one memory (POST /v1/memories; infer=True lets
        the server extract facts and events from it).  A list of messages
        {"role", "content"} is a conversation turn of session run_id (a new
        session id is made when run_id is None): it goes to POST
        /v1/sessions/{run_id}/messages, which stores each message and
        extracts before answering (wait=True).  When metadata, agent_id,
        kind or salience is given, or infer=False, the messages are stored
        with POST /v1/memories/batch instead, which carries those fields.

        Returns {"results": [{"id", "memory", "event": "ADD", ...}]}, plus
        "session_id" (and "facts_added" from the sessions route) for a
        conversation.
        """
        user = _user(user_id, agent_id)
        when = _iso(timestamp)
        if isinstance(messages, str):
            body = _compact({
                "user_id": user, "text": messages, "agent_id": agent_id,
                "session_id": run_id, "role": role, "time": when,
                "metadata": dict(metadata) if metadata is not None else None,
                "kind": kind, "salience": salience, "extract": bool(infer),
            })
            m = self._request("POST", "/v1/memories", body=body)
            return {"results": [{"id": m.get("id"), "memory": m.get("text", messages),
                                 "event": "ADD"}]}
        if isinstance(messages, Mapping):
            messages = [messages]
        msgs = [dict(x) for x in messages]
        sid = run_id or "s_" + uuid.uuid4().hex
        results: List[Dict[str, Any]] = []
        uses_batch = (metadata is not None or agent_id is not None or not infer
                      or kind is not None or salience is not None)
        if not uses_batch:
            facts = 0
            for part in _chunks(msgs, _MAX_BATCH) if msgs else [msgs]:
                wire = [_compact({"role": x.get("role"), "content": x.get("content"),
                                  "time": _iso(x.get("time")) or when, "name": x.get("name")})
                        for x in part]
                r = self._request("POST", "/v1/sessions/%s/messages" % _seg(sid, "run_id"),
                                  body={"user_id": user, "messages": wire, "wait": bool(wait)})
                facts += int(r.get("facts_added") or 0)
                for i, x in zip(r.get("ids") or [], part):
                    results.append({"id": i, "memory": x.get("content"), "role": x.get("role"),
                                    "event": "ADD"})
            return {"results": results, "session_id": sid, "facts_added": facts}
        for part in _chunks(msgs, _MAX_BATCH) if msgs else [msgs]:
            wire = [_compact({
                "user_id": user, "text": x.get("content"), "role": x.get("role") or role,
                "agent_id": agent_id, "session_id": sid,
                "time": _iso(x.get("time")) or when,
                "metadata": dict(metadata) if metadata is not None else None,
                "kind": kind, "salience": salience, "extract": bool(infer),
            }) for x in part]
            r = self._request("POST", "/v1/memories/batch", body={"memories": wire})
            for i, x in zip(r.get("ids") or [], part):
                results.append({"id": i, "memory": x.get("content"), "role": x.get("role"),
                                "event": "ADD"})
        return {"results": results, "session_id": sid}

    def search(
        self,
        query: str,
        user_id: Optional[str] = None,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        *,
        agent_id: Optional[str] = None,
        run_id: Optional[str] = None,
        threshold: Optional[float] = None,
        start: TimeLike = None,
        end: TimeLike = None,
        weights: Optional[Mapping[str, float]] = None,
        explain: bool = False,
        archived: bool = False,
        now: TimeLike = None,
    ) -> Dict[str, Any]:
        """The memories that best answer query (POST /v1/search).

        filters is a metadata filter in Mem0's grammar (sibling keys ANDed,
        AND / OR / NOT, operators eq ne in nin gt gte lt lte contains
        icontains); start / end bound the event time; agent_id / run_id keep
        to one agent or session; threshold drops hits scoring below it.

        Returns {"results": [memory + "score", ...]}, best first.
        """
        body = _compact({
            "user_id": _user(user_id, agent_id), "query": query, "k": limit,
            "filter": dict(filters) if filters is not None else None,
            "from": _iso(start), "to": _iso(end), "agent_id": agent_id, "session_id": run_id,
            "weights": dict(weights) if weights is not None else None,
            "explain": True if explain else None, "archived": True if archived else None,
            "now": _iso(now),
        })
        r = self._request("POST", "/v1/search", body=body)
        hits = [_mem0(h) for h in r.get("results") or []]
        if threshold is not None:
            hits = [h for h in hits if (h.get("score") or 0.0) >= threshold]
        return {"results": hits}

    def get_all(
        self,
        user_id: Optional[str] = None,
        limit: Optional[int] = 100,
        *,
        agent_id: Optional[str] = None,
        run_id: Optional[str] = None,
        start: TimeLike = None,
        end: TimeLike = None,
        archived: bool = False,
    ) -> Dict[str, Any]:
        """A user's memories, newest first, paging through GET
        /v1/users/{user}/memories until limit memories (None = all) are read.
        agent_id / run_id keep only that agent's or session's memories.

        Returns {"results": [memory, ...]}.
        """
        user = _user(user_id, agent_id)
        path = "/v1/users/%s/memories" % _seg(user, "user_id")
        out: List[Dict[str, Any]] = []
        cursor = None
        while limit is None or len(out) < limit:
            page = _PAGE if limit is None else max(1, min(_PAGE, limit - len(out)))
            if agent_id is not None or run_id is not None:
                page = _PAGE  # filtered here, so read whole pages
            r = self._request("GET", path, query={
                "limit": page, "cursor": cursor, "from": _iso(start), "to": _iso(end),
                "archived": True if archived else None})
            for m in r.get("items") or []:
                if agent_id is not None and m.get("agent_id") != agent_id:
                    continue
                if run_id is not None and m.get("session_id") != run_id:
                    continue
                out.append(_mem0(m))
            cursor = r.get("next_cursor")
            if not cursor:
                break
        if limit is not None:
            del out[limit:]
        return {"results": out}

    def get(self, memory_id: str, user_id: Optional[str] = None, *,
            agent_id: Optional[str] = None) -> Dict[str, Any]:
        """One memory (GET /v1/memories/{id}); NotFoundError when it is not
        this user's."""
        return _mem0(self._request("GET", "/v1/memories/%s" % _seg(memory_id, "memory_id"),
                                   query={"user_id": _user(user_id, agent_id)}))

    def update(self, memory_id: str, user_id: Optional[str] = None, text: Optional[str] = None,
               metadata: Optional[Mapping[str, Any]] = None, *,
               agent_id: Optional[str] = None) -> Dict[str, Any]:
        """Change a memory's text and/or metadata (PATCH /v1/memories/{id});
        returns the memory as it is now.  The change is kept in its history."""
        if text is None and metadata is None:
            raise ValidationError("INVALID_ARGUMENT",
                                  "update needs a new text or new metadata", None, "text")
        body = _compact({"user_id": _user(user_id, agent_id), "text": text,
                         "metadata": dict(metadata) if metadata is not None else None})
        path = "/v1/memories/%s" % _seg(memory_id, "memory_id")
        return _mem0(self._request("PATCH", path, body=body))

    def delete(self, memory_id: str, user_id: Optional[str] = None, *,
               agent_id: Optional[str] = None) -> Dict[str, Any]:
        """Delete one memory (DELETE /v1/memories/{id})."""
        r = self._request("DELETE", "/v1/memories/%s" % _seg(memory_id, "memory_id"),
                          query={"user_id": _user(user_id, agent_id)})
        out = {"message": "Memory deleted successfully!"}
        if isinstance(r, dict):
            out.update(r)
        return out

    def delete_all(self, user_id: Optional[str] = None, *, agent_id: Optional[str] = None,
                   wait: bool = True) -> Dict[str, Any]:
        """Erase everything of a user (DELETE /v1/users/{user}): memories,
        facts, events, graph.  With wait=True the call returns once the data
        is gone from every index and from disk."""
        user = _user(user_id, agent_id)
        r = self._request("DELETE", "/v1/users/%s" % _seg(user, "user_id"),
                          query={"wait": True if wait else None})
        out = {"message": "Memories deleted successfully!"}
        if isinstance(r, dict):
            out.update(r)
        return out

    def history(self, memory_id: str, user_id: Optional[str] = None, *,
                agent_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """The changes of a fact, oldest first, or for a memory the fact
        changes it caused (GET /v1/users/{user}/history/{id}), as a list
        like Mem0's: each change has the server's keys (event, slot,
        old_value, new_value, time, ...) plus memory_id, old_memory,
        new_memory, created_at, and event in upper case ("ADD", "UPDATE",
        "SUPERSEDE", ...)."""
        user = _user(user_id, agent_id)
        path = "/v1/users/%s/history/%s" % (_seg(user, "user_id"), _seg(memory_id, "memory_id"))
        r = self._request("GET", path)
        changes = r.get("changes") if isinstance(r, dict) else r
        out = []
        for c in changes or []:
            if isinstance(c, dict):
                c = dict(c)
                c.setdefault("memory_id", memory_id)
                c.setdefault("old_memory", c.get("old_value"))
                c.setdefault("new_memory", c.get("new_value"))
                c.setdefault("created_at", c.get("time"))
                if isinstance(c.get("event"), str):
                    c["event"] = c["event"].upper()
            out.append(c)
        return out

    # ------------------------------------------------------------ sessions

    def create_session(self, user_id: str, session_id: Optional[str] = None,
                       agent_id: Optional[str] = None) -> Dict[str, Any]:
        """Reserve a session id (POST /v1/sessions); returns {"session_id",
        "user_id"}.  Optional: add() with a new run_id starts one too."""
        return self._request("POST", "/v1/sessions", body=_compact(
            {"user_id": user_id, "session_id": session_id, "agent_id": agent_id}))

    def context(self, user_id: str, session_id: str, query: Optional[str] = None,
                max_tokens: Optional[int] = None, *, time: TimeLike = None,
                k: Optional[int] = None, recent: Optional[int] = None) -> Dict[str, Any]:
        """What an agent should know before answering in a session (GET
        /v1/sessions/{sid}/context): {"profile": [facts], "memories": [...],
        "recent": [...], "context": "<text block for the prompt>", ...}.
        query: the message being answered (memories relevant to it are
        chosen); max_tokens: the budget of the text block; time: "now" for
        the profile and recency; k: memories at most; recent: recent turns
        of the session at most."""
        path = "/v1/sessions/%s/context" % _seg(session_id, "session_id")
        return self._request("GET", path, query={
            "user_id": user_id, "query": query, "max_tokens": max_tokens, "time": _iso(time),
            "k": k, "recent": recent})

    def chat(self, user_id: str, session_id: str, message: str, *,
             system: Optional[str] = None, max_tokens: Optional[int] = None) -> Dict[str, Any]:
        """One chat turn with memory (POST /v1/sessions/{sid}/chat): {"reply",
        "context", "model"}.  Without a chat model on the server, reply is
        None and the turn is still remembered."""
        path = "/v1/sessions/%s/chat" % _seg(session_id, "session_id")
        return self._request("POST", path, body=_compact({
            "user_id": user_id, "message": message, "system": system,
            "max_tokens": max_tokens}))

    # ----------------------------------------------------------- knowledge

    def profile(self, user_id: str, as_of: TimeLike = None, history: bool = False, *,
                known_now: bool = False) -> Dict[str, Any]:
        """The user's facts (GET /v1/users/{user}/profile): {"facts": [...]}.
        as_of: the facts true at that time; history: superseded facts too;
        known_now: as_of judged with what is known now rather than then."""
        return self._request("GET", "/v1/users/%s/profile" % _seg(user_id, "user_id"), query={
            "as_of": _iso(as_of), "history": True if history else None,
            "known_now": True if known_now else None})

    def events(self, user_id: str, start: TimeLike = None, end: TimeLike = None, *,
               limit: Optional[int] = None) -> Dict[str, Any]:
        """The events the user reported (GET /v1/users/{user}/events),
        optionally those overlapping [start, end), at most limit:
        {"events": [...]}."""
        return self._request("GET", "/v1/users/%s/events" % _seg(user_id, "user_id"),
                             query={"from": _iso(start), "to": _iso(end), "limit": limit})

    def graph(self, user_id: str, entity: str, depth: int = 2) -> Dict[str, Any]:
        """The knowledge graph around entity, depth hops out (GET
        /v1/users/{user}/graph): {"entity", "depth", "nodes", "edges"}."""
        return self._request("GET", "/v1/users/%s/graph" % _seg(user_id, "user_id"),
                             query={"entity": entity, "depth": depth})

    def graph_search(self, user_id: str, query: str) -> Dict[str, Any]:
        """Graph nodes matching a text (GET /v1/users/{user}/graph/search)."""
        return self._request("GET", "/v1/users/%s/graph/search" % _seg(user_id, "user_id"),
                             query={"q": query})

    # ---------------------------------------------------------------- data

    def export(self, user_id: str) -> ExportStream:
        """Every memory of a user with its embedding, streamed (GET
        /v1/users/{user}/export): an iterator of dicts, read line by line as
        the server sends them, so exports of any size use little memory.
        Errors answered before the stream starts are raised here."""
        url = self._url("/v1/users/%s/export" % _seg(user_id, "user_id"), None)
        for attempt in range(self.max_retries + 1):
            conn, resp = self._send("GET", url, None, None)
            if resp.status < 400:
                return ExportStream(self, conn, resp)
            r = self._read("GET", url, conn, resp)
            if r.status == 429 and attempt < self.max_retries:
                err = error_from_response(r.status, _decode(r.data, ""), r.headers)
                wait = getattr(err, "retry_after", None)
                _time.sleep(min(wait if wait is not None else 1.0, _RETRY_WAIT_CAP_S))
                continue
            self._raise_for(r)
        raise AssertionError("unreachable")

    def import_(self, user_id: str, memories: Iterable[Union[Mapping[str, Any], str]],
                batch_size: int = _MAX_BATCH) -> Dict[str, Any]:
        """Store memories into user_id (POST /v1/users/{user}/import), in
        batches of at most batch_size (each batch is all or nothing).

        memories: dicts as export() yields them (every field is kept:
        times, salience, metadata, embedding), or plain dicts with at least
        "text", or strings.  Memories exported from another user get a new
        id; those of this user keep theirs, so an export restores in place.
        Returns {"imported": n}.
        """
        size = max(1, min(int(batch_size), _MAX_BATCH))
        total = 0
        batch: List[Dict[str, Any]] = []
        path = "/v1/users/%s/import" % _seg(user_id, "user_id")

        def flush() -> None:
            nonlocal total, batch
            if batch:
                r = self._request("POST", path, body={"memories": batch})
                total += int(r.get("imported", len(batch))) if isinstance(r, dict) else len(batch)
                batch = []

        for m in memories:
            if isinstance(m, str):
                m = {"text": m}
            d = dict(m)
            # Keys only the client adds (Mem0's names, search scores) go.
            for k in _MEM0_KEYS + _HIT_KEYS:
                d.pop(k, None)
            if d.get("user_id") not in (None, user_id):
                d.pop("id", None)
            d.pop("tenant", None)  # the tenant is the API key's
            d["user_id"] = user_id
            batch.append(d)
            if len(batch) >= size:
                flush()
        flush()
        return {"imported": total}

    def decay(self, user_id: str, now: TimeLike = None) -> Dict[str, Any]:
        """Apply salience decay to a user's memories now (POST
        /v1/users/{user}/decay): {"affected": n}."""
        return self._request("POST", "/v1/users/%s/decay" % _seg(user_id, "user_id"),
                             body=_compact({"now": _iso(now)}))

    # -------------------------------------------------------------- server

    def health(self) -> Dict[str, Any]:
        """GET /v1/health: {"healthy", "version", "status", "live", "ready",
        ...}.  Needs no API key.  A server shutting down answers 503, raised
        as ServerError."""
        return self._request("GET", "/v1/health")

    def stats(self) -> Dict[str, Any]:
        """The engine's counters (GET /v1/stats)."""
        return self._request("GET", "/v1/stats")

    def metrics(self) -> str:
        """The server's Prometheus metrics (GET /metrics), as text."""
        r = self._request("GET", "/metrics")
        return r if isinstance(r, str) else json.dumps(r)

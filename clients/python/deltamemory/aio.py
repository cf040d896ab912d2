"""AsyncMemoryClient: the same calls as MemoryClient, for asyncio.

Design.  Each coroutine runs the synchronous call on a thread pool owned by
the client (loop.run_in_executor), so the event loop never blocks on the
network and the two clients cannot disagree about paths, bodies, result
shapes or errors: there is one implementation.  The pool's size matches the
synchronous client's connection pool, so up to max_connections calls run
at once, each on its own keep-alive connection.  export() returns an async
iterator whose lines are read on the pool as well.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Dict, Mapping, Optional

from .client import ExportStream, MemoryClient

__all__ = ["AsyncMemoryClient", "AsyncExportStream"]


class AsyncExportStream:
    """An async iterator over an export's memories (see ExportStream)."""

    def __init__(self, stream: ExportStream, run: Any) -> None:
        self._stream = stream
        self._run = run

    def __aiter__(self) -> "AsyncExportStream":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        done = object()
        item = await self._run(next, self._stream, done)
        if item is done:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        await self._run(self._stream.close)

    async def __aenter__(self) -> "AsyncExportStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _delegate(name: str) -> Any:
    sync = getattr(MemoryClient, name)

    @functools.wraps(sync)
    async def call(self: "AsyncMemoryClient", *args: Any, **kwargs: Any) -> Any:
        return await self._run(functools.partial(getattr(self._sync, name), *args, **kwargs))

    return call


class AsyncMemoryClient:
    """The asyncio client: the arguments of MemoryClient, every method a
    coroutine with the same arguments and results.  Use it as
    `async with AsyncMemoryClient(...) as m:` or call aclose()."""

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
        self._sync = MemoryClient(host, api_key, timeout=timeout, max_retries=max_retries,
                                  max_connections=max_connections, headers=headers)
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(max_connections)),
                                        thread_name_prefix="deltamemory")

    @property
    def host(self) -> str:
        return self._sync.host

    def __repr__(self) -> str:
        return "AsyncMemoryClient(host=%r)" % (self._sync.host,)

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    add = _delegate("add")
    search = _delegate("search")
    get_all = _delegate("get_all")
    get = _delegate("get")
    update = _delegate("update")
    delete = _delegate("delete")
    delete_all = _delegate("delete_all")
    history = _delegate("history")
    create_session = _delegate("create_session")
    context = _delegate("context")
    chat = _delegate("chat")
    profile = _delegate("profile")
    events = _delegate("events")
    graph = _delegate("graph")
    graph_search = _delegate("graph_search")
    import_ = _delegate("import_")
    decay = _delegate("decay")
    health = _delegate("health")
    stats = _delegate("stats")
    metrics = _delegate("metrics")

    async def export(self, user_id: str) -> AsyncIterator[Dict[str, Any]]:
        """Every memory of a user, streamed: `async for m in await
        client.export(user)`.  Errors before the stream starts are raised
        here."""
        stream = await self._run(self._sync.export, user_id)
        return AsyncExportStream(stream, self._run)

    async def aclose(self) -> None:
        """Close the connections and stop the thread pool."""
        await self._run(self._sync.close)
        self._pool.shutdown(wait=False)

    async def __aenter__(self) -> "AsyncMemoryClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

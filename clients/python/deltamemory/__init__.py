"""DeltaMemory: the Python client of the DeltaMemory server.

    from deltamemory import MemoryClient
    m = MemoryClient("http://127.0.0.1:6969", api_key="dm_...")
    m.add("I live in Austin.", user_id="ann")
    m.search("where does ann live", user_id="ann")["results"]

Standard library only.  AsyncMemoryClient offers the same calls for asyncio.
"""

from .aio import AsyncExportStream, AsyncMemoryClient
from .client import DEFAULT_HOST, ExportStream, MemoryClient
from .errors import (
    AuthenticationError,
    ConflictError,
    ConnectionError,
    DeltaMemoryError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "MemoryClient",
    "AsyncMemoryClient",
    "ExportStream",
    "AsyncExportStream",
    "DEFAULT_HOST",
    "DeltaMemoryError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "ConflictError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "ConnectionError",
    "__version__",
]

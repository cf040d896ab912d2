"""Errors raised by the DeltaMemory client.

Every error the server answers is raised as a DeltaMemoryError subclass
chosen by the HTTP status, carrying the server's own error code, message
and, for an argument error, the name of the field at fault.  The server
speaks three error dialects (native, DeltaMemory SDK, Mem0); all three are
understood, so the same exception comes out whichever route answered.
"""

from __future__ import annotations

import builtins
from typing import Any, Mapping, Optional

__all__ = [
    "DeltaMemoryError",
    "AuthenticationError",
    "NotFoundError",
    "ValidationError",
    "ConflictError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "ConnectionError",
    "error_from_response",
]


class DeltaMemoryError(Exception):
    """An error answered by the server, or raised before a request was sent.

    Attributes:
        code: the server's error code ("NOT_FOUND", "INVALID_ARGUMENT", ...),
            or a code of the client's own for errors found before sending.
        message: the server's message, as it wrote it.
        status: the HTTP status, or None when no response was received.
        field: the request field the error concerns, when the server named one.
        body: the decoded error body (a dict), or the raw text when it was
            not JSON, or None.
    """

    def __init__(
        self,
        code: Optional[str],
        message: str,
        status: Optional[int] = None,
        field: Optional[str] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.body = body

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = self.message
        if self.field:
            text = "%s (field %r)" % (text, self.field)
        return "%s: %s" % (head, text) if head else text

    def __repr__(self) -> str:
        return "%s(code=%r, message=%r, status=%r, field=%r)" % (
            type(self).__name__, self.code, self.message, self.status, self.field)


class AuthenticationError(DeltaMemoryError):
    """401 or 403: no API key, an unknown or revoked key, or a forbidden call."""


class NotFoundError(DeltaMemoryError):
    """404: an unknown memory, fact, user or route."""


class ValidationError(DeltaMemoryError):
    """400 or 422: a missing, ill-typed or out-of-range argument (see field)."""


class ConflictError(DeltaMemoryError):
    """409: the object already exists (for example an imported id)."""


class PayloadTooLargeError(DeltaMemoryError):
    """413: a body, a text or a batch over the server's limit."""


class RateLimitError(DeltaMemoryError):
    """429: too many requests.  retry_after is the wait the server asked for,
    in seconds (None when it did not say)."""

    def __init__(
        self,
        code: Optional[str],
        message: str,
        status: Optional[int] = None,
        field: Optional[str] = None,
        body: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(code, message, status, field, body)
        self.retry_after = retry_after


class ServerError(DeltaMemoryError):
    """5xx: the server failed, or is shutting down (503)."""


class ConnectionError(DeltaMemoryError, builtins.ConnectionError):
    """The server could not be reached, the connection broke, or it timed out.

    It is also a subclass of the built-in ConnectionError, so code that
    already catches that keeps working."""

    def __init__(self, message: str, cause: Optional[BaseException] = None) -> None:
        DeltaMemoryError.__init__(self, "CONNECTION_ERROR", message)
        self.cause = cause


_BY_STATUS = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}

# Codes used when a body gives none (the Mem0 dialect carries a message only).
_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        # An HTTP date is allowed too; the server sends seconds, and a
        # date from a proxy is rare enough that "unknown" is acceptable.
        return None


def error_from_response(
    status: int, body: Any, headers: Optional[Mapping[str, str]] = None
) -> DeltaMemoryError:
    """The exception for an error response: status, decoded body (dict or
    text) and headers."""
    code = None
    message = None
    field = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            # native: {"error": {"code", "message", "field"?}}
            code = err.get("code")
            message = err.get("message")
            field = err.get("field")
        elif isinstance(err, str):
            # deltamemory: {"error": msg, "code": C}; mem0: {"error": msg}
            message = err
            code = body.get("code")
            field = body.get("field")
        elif isinstance(body.get("detail"), str):
            message = body["detail"]
        elif isinstance(body.get("message"), str):
            message = body["message"]
            code = body.get("code")
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    if not isinstance(code, str) or not code:
        code = _DEFAULT_CODES.get(status, "HTTP_%d" % status)
    if not isinstance(message, str) or not message:
        message = "the server answered HTTP %d" % status
    if not isinstance(field, str) or not field:
        field = None
    if status == 429:
        ra = None
        if headers is not None:
            ra = _parse_retry_after(headers.get("Retry-After"))
        return RateLimitError(code, message, status, field, body, retry_after=ra)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else DeltaMemoryError
    return cls(code, message, status, field, body)

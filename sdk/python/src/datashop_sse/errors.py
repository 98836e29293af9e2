"""The one exception type of the SDK."""

from __future__ import annotations

from typing import Any, Dict, Optional

#: Server codes after which the same request may succeed later without any change.
RETRYABLE_CODES = frozenset({"ERR_SSE_BUS_UNAVAILABLE", "ERR_SSE_CLOSING", "ERR_SSE_CALLBACK_FAILED"})


class SSEPublishError(Exception):
    """A publish that failed, after its retries.

    ``status`` is the HTTP status (``None`` when no answer came: timeout, connection refused), ``code`` the
    gateway's stable ``ERR_SSE_*`` code when it sent one (``ERR_SSE_FORBIDDEN_CHANNEL``, ...), ``details``
    the rest of its error body (for a 403, ``details["channels"]`` names the refused channels), and
    ``attempts`` how many requests were made. Never carries the service token.
    """

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        code: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: Dict[str, Any] = dict(details or {})
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        """True when the same publish may succeed later (no answer, 502-504, or a retryable code)."""
        if self.code is not None and self.code.startswith("ERR_SSE_"):
            return self.code in RETRYABLE_CODES
        return self.status is None or self.status in (502, 503, 504)

    def __str__(self) -> str:
        where = "no answer" if self.status is None else f"HTTP {self.status}"
        code = f" {self.code}" if self.code else ""
        return f"{self.message} ({where}{code}, {self.attempts} attempt(s))"

    def __repr__(self) -> str:
        return f"SSEPublishError(status={self.status!r}, code={self.code!r}, message={self.message!r})"

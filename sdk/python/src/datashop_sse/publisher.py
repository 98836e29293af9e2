"""``SSEPublisher``: ``POST {gateway_url}/publish`` with a service token, bounded retries that never publish
twice, and an opt-out of exceptions for jobs that must not fail because their event stream is down."""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import SSEPublishError

try:  # Python 3.8+: TypedDict lives in typing.
    from typing import TypedDict
except ImportError:  # pragma: no cover
    TypedDict = dict  # type: ignore[assignment,misc]

#: Most events the gateway takes in one request; ``publish_many`` splits longer lists.
MAX_BATCH_EVENTS = 100

_LOG = logging.getLogger("datashop_sse")
_RETRY_STATUSES = frozenset({502, 503, 504})
_MAX_BACKOFF_SECONDS = 5.0


class PublishedEvent(TypedDict):
    """What the gateway answers for each published event."""

    id: str
    channel: str
    time: int


class _Failure(Exception):
    """One failed attempt: ``error`` to raise, ``retry`` whether another attempt may help."""

    def __init__(self, error: SSEPublishError, retry: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry = retry


def _event_body(event: Mapping[str, Any]) -> Dict[str, Any]:
    """One event as the gateway reads it, with an idempotency key of its own."""
    unknown = set(event) - {"channel", "data", "users", "idempotency_key", "idempotencyKey"}
    if unknown:
        raise ValueError(f"unknown event field(s) {sorted(unknown)}; use channel, data, users, idempotency_key")
    channel = event.get("channel")
    if not isinstance(channel, str) or channel == "":
        raise ValueError("each event needs a string 'channel', e.g. 'logs:ws1:wf1'")
    body: Dict[str, Any] = {"channel": channel, "data": event.get("data")}
    users = event.get("users")
    if users is not None:
        body["users"] = [str(user) for user in users]
    key = event.get("idempotency_key", event.get("idempotencyKey"))
    body["idempotencyKey"] = str(key) if key is not None else str(uuid.uuid4())
    return body


class SSEPublisher:
    """Publishes events to a ``@datashop/sse-gateway`` over HTTP.

    ``gateway_url`` is the stream route of the gateway (``http://bff:3000/events``); events go to
    ``{gateway_url}/publish`` with ``Authorization: Bearer {service_token}``. Each logical publish gets an
    idempotency key (a uuid4 unless given) that every retry reuses, so a retry after a timeout, a 503 or a
    dropped connection never publishes twice. At most ``max_attempts`` requests are made, with exponential
    backoff and jitter between them.

    With ``raise_on_error=False`` a failure is logged on the ``datashop_sse`` logger (never the token) and
    ``None`` is returned instead of raising. Instances hold no per-request state and are safe to share
    between threads.
    """

    def __init__(
        self,
        gateway_url: str,
        service_token: str,
        timeout: float = 5.0,
        raise_on_error: bool = True,
        *,
        max_attempts: int = 3,
        backoff: float = 0.2,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        if not isinstance(gateway_url, str) or not gateway_url.startswith(("http://", "https://")):
            raise ValueError("gateway_url must be the http(s) URL of the stream route, e.g. http://bff:3000/events")
        if not isinstance(service_token, str) or service_token.strip() == "":
            raise ValueError("service_token must be a non-empty string")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.gateway_url = gateway_url.rstrip("/")
        self.publish_url = f"{self.gateway_url}/publish"
        self.timeout = float(timeout)
        self.raise_on_error = bool(raise_on_error)
        self.max_attempts = int(max_attempts)
        self.backoff = float(backoff)
        self._logger = logger or _LOG
        self._authorization = f"Bearer {service_token}"

    def __repr__(self) -> str:
        # The token stays out of reprs, tracebacks and logs.
        return f"SSEPublisher({self.gateway_url!r}, timeout={self.timeout}, raise_on_error={self.raise_on_error})"

    def publish(
        self,
        channel: str,
        data: Any,
        users: Optional[Sequence[str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Optional[PublishedEvent]:
        """Publish one event; returns the gateway's ``{"id", "channel", "time"}``.

        ``users`` restricts the event to those principal ids. ``idempotency_key`` (1-200 characters) makes a
        repeated call publish nothing new; one is generated when omitted.

        Raises :class:`SSEPublishError` (or returns ``None`` with ``raise_on_error=False``).
        """
        try:
            body = _event_body({"channel": channel, "data": data, "users": users, "idempotency_key": idempotency_key})
            result = self._send(body, body["channel"])
        except (SSEPublishError, ValueError, TypeError) as error:
            return self._fail(error, channel)
        return result  # type: ignore[return-value]

    def publish_many(self, events: Sequence[Mapping[str, Any]]) -> Optional[List[PublishedEvent]]:
        """Publish several events in order; returns one ``{"id", "channel", "time"}`` per event, in order.

        Each event is a mapping with ``channel``, ``data`` and optionally ``users`` and ``idempotency_key``.
        Up to 100 events go in one request, validated and published all-or-nothing by the gateway; longer
        lists are sent as consecutive requests of 100 (a failure stops there; retrying the same call with
        the same keys publishes only what is missing).
        """
        channel = "?"
        try:
            bodies = [_event_body(event) for event in events]
            results: List[PublishedEvent] = []
            for start in range(0, len(bodies), MAX_BATCH_EVENTS):
                chunk = bodies[start : start + MAX_BATCH_EVENTS]
                channel = chunk[0]["channel"]
                answer = self._send({"events": chunk}, channel)
                results.extend(answer["events"])
            return results
        except (SSEPublishError, ValueError, TypeError) as error:
            return self._fail(error, channel)

    def publish_log(
        self,
        workspace_id: str,
        workflow_id: str,
        log: Any,
        idempotency_key: Optional[str] = None,
    ) -> Optional[PublishedEvent]:
        """Publish ``log`` (a line or a dict) on the ETL log channel ``logs:{workspace_id}:{workflow_id}``."""
        return self.publish(f"logs:{workspace_id}:{workflow_id}", log, idempotency_key=idempotency_key)

    def _fail(self, error: Exception, channel: str) -> None:
        if self.raise_on_error:
            raise error
        self._logger.warning("datashop_sse: publish to %s failed: %s", channel, error)
        return None

    def _send(self, body: Dict[str, Any], channel: str) -> Dict[str, Any]:
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(payload)
            except _Failure as failure:
                failure.error.attempts = attempt
                if not failure.retry or attempt >= self.max_attempts:
                    raise failure.error from None
                delay = min(_MAX_BACKOFF_SECONDS, self.backoff * (2 ** (attempt - 1))) * random.uniform(0.5, 1.5)
                self._logger.info(
                    "datashop_sse: publish to %s failed (%s); retry %d of %d in %.2f s with the same idempotency key",
                    channel,
                    failure.error,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                time.sleep(delay)

    def _attempt(self, payload: bytes) -> Dict[str, Any]:
        request = urllib.request.Request(
            self.publish_url,
            data=payload,
            method="POST",
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "datashop-sse-python/0.1.0",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) only)
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            status, code, message, details = _error_body(error)
            failure = SSEPublishError(message, status=status, code=code, details=details)
            raise _Failure(failure, retry=status in _RETRY_STATUSES) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise _Failure(SSEPublishError(f"No answer from {self.publish_url}: {reason}"), retry=True) from None
        except ValueError as error:
            raise _Failure(SSEPublishError(f"The gateway answered something that is not JSON: {error}"), retry=False)


def _error_body(error: urllib.error.HTTPError) -> Tuple[int, Optional[str], str, Dict[str, Any]]:
    """Status, code, message and details of a gateway error answer (``{"error": {"code", "message", ...}}``)."""
    try:
        parsed = json.loads(error.read().decode("utf-8"))
        fields = dict(parsed["error"])
    except Exception:  # noqa: BLE001 (a proxy's HTML page, an empty body, ...)
        return error.code, None, f"The gateway answered HTTP {error.code} {error.reason}", {}
    finally:
        error.close()
    code = fields.pop("code", None)
    message = str(fields.pop("message", f"HTTP {error.code}"))
    return error.code, code if isinstance(code, str) else None, message, fields

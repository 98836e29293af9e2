"""SSEPublisher against a real gateway process, checked by what a real SSE stream receives."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import List

import pytest
from conftest import ALERTS_TOKEN, ETL_ROTATED, ETL_TOKEN, Gateway

from datashop_sse import SSEPublishError, SSEPublisher


def test_publish_arrives_on_the_stream_with_the_answered_id(gateway: Gateway, sse) -> None:
    stream = sse("logs:*")
    answer = SSEPublisher(gateway.url, ETL_TOKEN).publish("logs:ws1:wf1", {"line": "hello"})
    assert answer is not None and answer["channel"] == "logs:ws1:wf1" and isinstance(answer["time"], int)
    [event] = stream.take(1)
    assert event == {"id": answer["id"], "channel": "logs:ws1:wf1", "data": {"line": "hello"}}


def test_publish_log_and_a_rotated_token(gateway: Gateway, sse) -> None:
    stream = sse("logs:ws9:wf3")
    answer = SSEPublisher(gateway.url + "/", ETL_ROTATED).publish_log("ws9", "wf3", "step 3 done")
    [event] = stream.take(1)
    assert event == {"id": answer["id"], "channel": "logs:ws9:wf3", "data": "step 3 done"}


def test_publish_many_in_order_also_past_one_request(gateway: Gateway, sse) -> None:
    stream = sse("logs:batch,metrics:batch")
    events = [{"channel": "metrics:batch" if i % 3 else "logs:batch", "data": i} for i in range(150)]
    answers = SSEPublisher(gateway.url, ETL_TOKEN).publish_many(events)
    assert answers is not None and [a["channel"] for a in answers] == [e["channel"] for e in events]
    received = stream.take(150)
    assert [e["data"] for e in received] == list(range(150))
    assert [e["id"] for e in received] == [a["id"] for a in answers]


def test_401_and_403_raise_with_status_and_code(gateway: Gateway) -> None:
    before = gateway.stats()["events"]
    with pytest.raises(SSEPublishError) as unknown:
        SSEPublisher(gateway.url, "not-a-token-of-this-gateway").publish("logs:a", 1)
    assert (unknown.value.status, unknown.value.code) == (401, "ERR_SSE_UNAUTHENTICATED")
    assert unknown.value.attempts == 1  # not worth a retry
    with pytest.raises(SSEPublishError) as forbidden:
        SSEPublisher(gateway.url, ALERTS_TOKEN).publish_many([{"channel": "alerts:u1"}, {"channel": "logs:a"}])
    assert (forbidden.value.status, forbidden.value.code) == (403, "ERR_SSE_FORBIDDEN_CHANNEL")
    assert forbidden.value.details["channels"] == ["logs:a"]
    assert not forbidden.value.retryable
    with pytest.raises(SSEPublishError) as invalid:
        SSEPublisher(gateway.url, ETL_TOKEN).publish("logs:a b", 1)
    assert (invalid.value.status, invalid.value.code) == (400, "ERR_SSE_INVALID_CHANNEL")
    assert ETL_TOKEN not in repr(invalid.value) + str(invalid.value)
    assert gateway.stats()["events"] == before  # the batch with one forbidden event published nothing


def test_raise_on_error_false_returns_none_and_logs_without_the_token(gateway: Gateway, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="datashop_sse")
    quiet = SSEPublisher(gateway.url, ALERTS_TOKEN, raise_on_error=False)
    assert quiet.publish("logs:a", 1) is None
    assert quiet.publish("logs:a", object()) is None  # not JSON: still no exception
    assert "ERR_SSE_FORBIDDEN_CHANNEL" in caplog.text
    assert ALERTS_TOKEN not in caplog.text and ALERTS_TOKEN not in repr(quiet)


def test_gateway_down_raise_on_error_false_returns_none_quickly(caplog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.INFO, logger="datashop_sse")
    started = time.monotonic()
    assert SSEPublisher(f"http://127.0.0.1:{port}/events", ETL_TOKEN, raise_on_error=False).publish_log("w", "f", "x") is None
    assert time.monotonic() - started < 3
    assert caplog.text.count("retry") == 2 and "3 attempt(s)" in caplog.text
    assert ETL_TOKEN not in caplog.text


def test_a_timeout_is_retried_then_raised() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        port = silent.getsockname()[1]
        with pytest.raises(SSEPublishError) as timed_out:
            SSEPublisher(f"http://127.0.0.1:{port}/events", ETL_TOKEN, timeout=0.2, max_attempts=2).publish("logs:a", 1)
        assert timed_out.value.status is None and timed_out.value.attempts == 2
    finally:
        silent.close()


def test_a_503_after_publishing_is_retried_with_the_same_key_and_published_once(gateway: Gateway, sse, caplog) -> None:
    caplog.set_level(logging.INFO, logger="datashop_sse")
    stream = sse("logs:retry")
    gateway.fail_after_publish(1)
    publisher = SSEPublisher(gateway.url, ETL_TOKEN, backoff=0.05)
    answer = publisher.publish("logs:retry", "once")
    assert "retry 1 of 2" in caplog.text
    publisher.publish("logs:retry", "sentinel")
    received = stream.take(2)
    assert [e["data"] for e in received] == ["once", "sentinel"]
    assert received[0]["id"] == answer["id"]
    # Also for batches: each event keeps its key across the retry.
    gateway.fail_after_publish(1)
    answers = publisher.publish_many([{"channel": "logs:retry", "data": "b0"}, {"channel": "logs:retry", "data": "b1"}])
    publisher.publish("logs:retry", "end")
    assert [e["data"] for e in stream.take(3)] == ["b0", "b1", "end"]
    assert answers is not None and len(answers) == 2


def test_a_retry_across_a_gateway_restart_publishes_once(own_gateway: Gateway) -> None:
    own_gateway.stop()
    first_failure = threading.Event()

    class Signal(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retry" in record.getMessage():
                first_failure.set()

    logger = logging.getLogger("datashop_sse.restart")
    logger.setLevel(logging.INFO)
    logger.addHandler(Signal())
    publisher = SSEPublisher(own_gateway.url, ETL_TOKEN, max_attempts=50, backoff=0.05, logger=logger)
    result: List[object] = []
    worker = threading.Thread(target=lambda: result.append(publisher.publish("logs:restart", "after")))
    worker.start()
    assert first_failure.wait(10)
    own_gateway.start()
    worker.join(20)
    assert isinstance(result[0], dict) and result[0]["channel"] == "logs:restart"
    # Connection refused until the restart: nothing had landed, and the retry landed once.
    assert own_gateway.stats()["events"] == 1


def test_one_publisher_shared_by_threads(gateway: Gateway, sse) -> None:
    stream = sse("metrics:threads")
    publisher = SSEPublisher(gateway.url, ETL_TOKEN)
    ids: List[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(25):
            answer = publisher.publish("metrics:threads", {"thread": n, "i": i})
            with lock:
                ids.append(answer["id"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    received = stream.take(200)
    assert len(set(ids)) == 200 and sorted(e["id"] for e in received) == sorted(ids)
    for n in range(8):
        assert [e["data"]["i"] for e in received if e["data"]["thread"] == n] == list(range(25))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SSEPublisher("bff:3000/events", ETL_TOKEN)
    with pytest.raises(ValueError):
        SSEPublisher("http://bff:3000/events", "")
    with pytest.raises(ValueError):
        SSEPublisher("http://127.0.0.1:9/events", ETL_TOKEN).publish_many([{"chanel": "logs:a"}])

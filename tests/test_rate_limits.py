"""Rate limits on the public endpoints, counted in Redis, answered 429 with Retry-After."""

from __future__ import annotations

from redis.connection import AbstractConnection

from tests.conftest import DEAD_REDIS_URL, submit
from tests.helpers import assert_problem, counts


def status_of(client, report_id: str, receipt: str, address: str = "198.51.100.7"):
    return client.get(
        f"/api/v1/reports/{report_id}/status",
        headers={"X-Report-Receipt": receipt},
        environ_base={"REMOTE_ADDR": address},
    )


def test_submissions_over_the_limit_get_429_with_retry_after(make_app):
    app = make_app(RATELIMIT_REPORTS="2/minute")
    client = app.test_client()
    assert submit(client).status_code == 201
    assert submit(client).status_code == 201
    response = submit(client)
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    with app.app_context():
        assert counts()["reports"] == 2


def test_limits_are_per_client(make_app):
    client = make_app(RATELIMIT_REPORTS="1/minute").test_client()
    assert submit(client, environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 201
    assert submit(client, environ_base={"REMOTE_ADDR": "198.51.100.2"}).status_code == 201
    assert submit(client, environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 429


def test_receipt_guessing_is_throttled_per_client(make_app):
    client = make_app(RATELIMIT_RECEIPT_FAILURES="3/minute").test_client()
    created = submit(client).get_json()
    for _ in range(3):
        assert status_of(client, created["id"], "GUESS").status_code == 404
    response = status_of(client, created["id"], created["receipt"])
    assert_problem(response, 429)


def test_receipt_guessing_is_throttled_per_report_across_clients(make_app):
    client = make_app(RATELIMIT_RECEIPT_FAILURES="3/minute").test_client()
    created = submit(client).get_json()
    for n in range(3):
        assert status_of(client, created["id"], "GUESS", f"203.0.113.{n}").status_code == 404
    assert status_of(client, created["id"], "GUESS", "203.0.113.99").status_code == 429


def test_successful_reads_do_not_count_as_failures(make_app):
    client = make_app(RATELIMIT_RECEIPT_FAILURES="2/minute").test_client()
    created = submit(client).get_json()
    for _ in range(5):
        assert status_of(client, created["id"], created["receipt"]).status_code == 200


def test_rate_limit_buckets_hold_no_client_address(make_app, redis_conn):
    client = make_app(RATELIMIT_REPORTS="5/minute").test_client()
    submit(client, environ_base={"REMOTE_ADDR": "198.51.100.77"})
    keys = [k.decode() for k in redis_conn.keys("*")]
    assert keys, "the limiter should count in Redis"
    assert not any("198.51.100.77" in key for key in keys)


def test_limiter_fails_open_when_redis_is_down(make_app):
    # A reporter must never be refused because the rate-limit store is unreachable.
    client = make_app(REDIS_URL=DEAD_REDIS_URL, RATELIMIT_REPORTS="5/minute").test_client()
    assert submit(client).status_code == 201


def test_submission_answers_carry_the_limit_headers(make_app):
    client = make_app(RATELIMIT_REPORTS="3/minute;100/hour").test_client()
    first, second = submit(client), submit(client)
    assert first.headers["X-RateLimit-Limit"] == "3"  # the tightest limit
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert second.headers["X-RateLimit-Remaining"] == "1"
    assert 0 < int(first.headers["Retry-After"]) <= 60
    submit(client)
    refused = submit(client)
    assert_problem(refused, 429)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_limits_still_count_in_memory_while_redis_is_down(make_app):
    client = make_app(REDIS_URL=DEAD_REDIS_URL, RATELIMIT_REPORTS="2/minute").test_client()
    assert submit(client).status_code == 201
    assert submit(client).status_code == 201
    assert_problem(submit(client), 429)


def test_submission_costs_one_redis_command(make_app, redis_conn, monkeypatch):
    # Counting (every limit) and the headers come from one script call; the triage job is
    # queued by the dispatcher, not by the request.
    app = make_app(RATELIMIT_REPORTS="5/minute;50/hour")
    client = app.test_client()
    submit(client)  # the first call also loads the script into Redis
    # Counted where every command leaves for the server, whichever path sent it (the limiter
    # bypasses the client's execute_command).
    sent: list[str] = []
    real = AbstractConnection.send_packed_command

    def counted(connection, command, *args, **options):
        packed = command if isinstance(command, bytes | str) else b"".join(command)
        sent.append(packed.split(b"\r\n")[2].decode())
        return real(connection, command, *args, **options)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    assert submit(client).headers["X-RateLimit-Remaining"] == "3"
    assert sent == ["EVALSHA"]
    keys = redis_conn.keys("LIMITER/1trip/*")
    assert len(keys) == 2 and all(redis_conn.ttl(k) > 0 for k in keys)


def test_limits_stay_in_redis_after_redis_closes_idle_connections(make_app, redis_conn):
    # As after a Redis restart: the next submission reconnects instead of counting in memory.
    client = make_app(RATELIMIT_REPORTS="5/minute").test_client()
    assert submit(client).headers["X-RateLimit-Remaining"] == "4"
    database = str(redis_conn.connection_pool.connection_kwargs.get("db", 0))
    own = redis_conn.client_id()
    for connection in redis_conn.client_list():
        if connection["db"] == database and int(connection["id"]) != own:
            redis_conn.client_kill_filter(_id=connection["id"])
    assert submit(client).headers["X-RateLimit-Remaining"] == "3"

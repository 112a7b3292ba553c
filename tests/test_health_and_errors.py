"""Health checks, and every error as problem+json."""

from __future__ import annotations

from tests.conftest import DEAD_DATABASE_URL, DEAD_REDIS_URL, new_key, submit
from tests.helpers import assert_problem


def test_healthz_answers(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_200_when_postgresql_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"postgresql": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_down(make_app):
    response = make_app(REDIS_URL=DEAD_REDIS_URL).test_client().get("/readyz")
    body = assert_problem(response, 503)
    assert body["checks"] == {"postgresql": "ok", "redis": "down"}
    assert response.headers["Retry-After"]


def test_readyz_is_503_when_postgresql_is_down(make_app):
    response = make_app(DATABASE_URL=DEAD_DATABASE_URL).test_client().get("/readyz")
    body = assert_problem(response, 503)
    assert body["checks"]["postgresql"] == "down"


def test_submission_while_postgresql_is_down_is_503_with_retry_after(make_app):
    response = submit(make_app(DATABASE_URL=DEAD_DATABASE_URL).test_client())
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_unknown_url_is_problem_json(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert_problem(client.get("/nothing-here"), 404)


def test_wrong_method_is_problem_json(client):
    response = client.delete("/api/v1/reports")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_oversize_body_is_413_problem_json(client):
    response = client.post(
        "/api/v1/reports", data=b"{" + b" " * (1024 * 1024) + b"}",
        content_type="application/json", headers={"Idempotency-Key": new_key()},
    )
    assert_problem(response, 413)


def test_unexpected_error_is_a_generic_500_problem(make_app):
    app = make_app()

    # A fault that cannot be produced for real through the public API: a view that raises.
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret detail from deep inside")

    response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret detail" not in response.get_data(as_text=True)
    assert body["title"] == "Internal Server Error"

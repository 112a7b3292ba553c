"""RFC 9457 problem+json: the one renderer for every error the service returns.

ProblemError (the domain's errors), Werkzeug's HTTP errors (404, 405, 413, 429...) and anything
unexpected all leave as `application/problem+json`. Unexpected errors are logged with their
type and traceback but answered with a generic body: no stack trace or SQL ever reaches a client.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, json
from flask_restx import Api
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from stopapp.errors import ProblemError, ServiceUnavailableError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_uri: str = "about:blank",
    errors: dict | None = None,
    headers: dict | None = None,
    extensions: dict | None = None,
) -> Response:
    """Build a problem+json response; `extensions` are extra members (RFC 9457, 3.2)."""
    body: dict = {"type": type_uri, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extensions or {})
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MEDIA_TYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_type(error: ProblemError) -> str:
    return f"urn:stopapp:problem:{error.type_slug}"


def problem_object(error: ProblemError) -> dict:
    """The problem object of `error` as a dict, for answers that carry several (bulk)."""
    body = {"type": problem_type(error), "title": error.title, "status": error.status,
            "detail": error.detail}
    if error.errors:
        body["errors"] = error.errors
    body.update(error.extensions)
    return body


def render_error(error: BaseException) -> Response:
    """Turn any exception into a problem+json response."""
    if isinstance(error, OperationalError | RedisConnectionError):
        # A backing service is down: the client should retry later, nothing was stored.
        log.error("backing service unavailable: %s", type(error).__name__)
        error = ServiceUnavailableError("A backing service is down; try again shortly.")
    if isinstance(error, ProblemError):
        return problem_response(
            error.status,
            error.title,
            error.detail,
            type_uri=problem_type(error),
            errors=error.errors,
            headers=error.headers,
            extensions=error.extensions,
        )
    if isinstance(error, HTTPException) and error.code:
        headers = {}
        if error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        retry_after = error.get_response().headers.get("Retry-After")
        if retry_after:
            headers["Retry-After"] = retry_after
        return problem_response(error.code, error.name, error.description, headers=headers)
    if isinstance(error, DBAPIError):
        # PostgreSQL quotes the offending value in its message ("invalid input syntax for
        # type integer: ..."), so a database error is logged by type and SQLSTATE only.
        log.error("database error %s (SQLSTATE %s)", type(error.orig).__name__,
                  getattr(error.orig, "sqlstate", None))
    else:
        # Only the type reaches the log line; the traceback shows code, not the request's data.
        log.error("unhandled %s", type(error).__name__, exc_info=error)
    return problem_response(500, "Internal Server Error", "The server could not complete this.")


class ProblemApi(Api):
    """flask-restx Api whose errors are problem+json instead of its own application/json."""

    def handle_error(self, e: Exception) -> Response:
        return render_error(e)

    @property
    def __schema__(self) -> dict:
        # restx lists only the models a resource names; the definitions generated from nested
        # marshmallow schemas (Location, People...) are referenced from inside those, so add
        # every registered model.
        schema = super().__schema__
        definitions = schema.setdefault("definitions", {})
        for name, model in self.models.items():
            definitions.setdefault(name, model.__schema__)
        return schema


def install_error_handlers(app: Flask) -> None:
    """Errors outside the API's resources (unknown URLs, /readyz...) are problem+json too."""
    app.register_error_handler(ProblemError, render_error)
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, render_error)

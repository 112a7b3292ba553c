"""Running jobs inside an app context, in a worker or in-process in tests."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from flask import Flask, has_app_context
from sqlalchemy.exc import DBAPIError

_app: Flask | None = None


def worker_app() -> Flask:
    """The worker's app, built once per process from the environment."""
    global _app
    if _app is None:
        from stopapp import create_app

        _app = create_app()
        # A forked job must not share the parent's PostgreSQL connections.
        os.register_at_fork(after_in_child=_dispose_engine)
    return _app


def _dispose_engine() -> None:
    from stopapp.extensions import db

    if _app is not None:
        with _app.app_context():
            db.engine.dispose(close=False)


class JobDatabaseError(Exception):
    """A database error in a job, stripped of PostgreSQL's message (it can quote values)."""


def in_app_context(job: Callable) -> Callable:
    """Run `job` in the current app context (tests) or in the worker's own app.

    A database error leaves the job as JobDatabaseError naming only its type and SQLSTATE:
    RQ stores and logs a failed job's traceback, and PostgreSQL's messages quote the values
    of the row (report text, contact details).
    """

    @functools.wraps(job)
    def wrapper(*args, **kwargs):
        try:
            if has_app_context():
                return job(*args, **kwargs)
            with worker_app().app_context():
                return job(*args, **kwargs)
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            raise JobDatabaseError(
                f"{type(exc.orig).__name__} (SQLSTATE {state}) in {job.__name__}"
            ) from None

    return wrapper

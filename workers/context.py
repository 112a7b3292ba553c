"""Running jobs inside an app context, in a worker or in-process in tests."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from flask import Flask, has_app_context

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


def in_app_context(job: Callable) -> Callable:
    """Run `job` in the current app context (tests) or in the worker's own app."""

    @functools.wraps(job)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return job(*args, **kwargs)
        with worker_app().app_context():
            return job(*args, **kwargs)

    return wrapper

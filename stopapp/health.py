"""Readiness: can the app reach what it needs right now?"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from stopapp.extensions import db, redis_client

log = logging.getLogger(__name__)


def readiness() -> dict[str, bool]:
    """{"postgresql": bool, "redis": bool}; never raises."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["postgresql"] = True
    except SQLAlchemyError:
        log.warning("readiness: PostgreSQL does not answer")
        checks["postgresql"] = False
    finally:
        db.session.rollback()
    try:
        checks["redis"] = bool(redis_client().ping())
    except RedisError:
        log.warning("readiness: Redis does not answer")
        checks["redis"] = False
    return checks

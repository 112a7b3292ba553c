"""The unit of work: one transaction per request or job, committed at the edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from stopapp.extensions import db


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """Commit what the block did, or roll all of it back if it raised."""
    session = db.session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise

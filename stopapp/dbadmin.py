"""Creating and dropping whole databases, for tests, benchmarks and CI checks."""

from __future__ import annotations

import psycopg
from sqlalchemy import make_url

EXTENSIONS = ("postgis", "pg_trgm")


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database named in the SQLAlchemy `url`, disconnecting its sessions."""
    target = make_url(url)
    with psycopg.connect(_libpq(target.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def recreate_database(url: str) -> None:
    """Drop and create the database named in `url`, with the extensions the schema needs."""
    target = make_url(url)
    drop_database(url)
    with psycopg.connect(_libpq(target.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target.database}"')
    with psycopg.connect(_libpq(target), autocommit=True) as conn:
        for extension in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")

"""The floor for report intake on this machine: bare Flask doing one INSERT per POST.

bench/intake.py serves this module with the same gunicorn settings as the real app and
compares the two. The handler does only what any intake must do: parse the JSON body, write
one row holding a geography point into a table with a GiST index (one autocommitted INSERT,
so one round trip to PostgreSQL), and answer 201 with a small JSON body. No validation, no
idempotency, no rate limit, no queueing.

psycopg_pool is not installed, so each gunicorn worker thread keeps one connection of its own
(the same number of connections a pool of `--threads` per worker would hold).

The DSN comes from BENCH_BASELINE_DSN; intake.py creates the table with SCHEMA below.
"""

from __future__ import annotations

import os
import threading
import uuid

import psycopg
from flask import Flask, request

TABLE = "bench_baseline_reports"
SCHEMA = f"""
CREATE TABLE {TABLE} (
    id uuid PRIMARY KEY,
    description text NOT NULL,
    location geography(Point, 4326) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX {TABLE}_location_idx ON {TABLE} USING gist (location);
"""
INSERT = (
    f"INSERT INTO {TABLE} (id, description, location) "
    "VALUES (%s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) RETURNING created_at"
)

_local = threading.local()
app = Flask(__name__)


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["BENCH_BASELINE_DSN"], autocommit=True)
        _local.conn = conn
    return conn


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/reports")
def create_report():
    data = request.get_json()
    location = data["location"]
    report_id = uuid.uuid4()
    (created_at,) = _connection().execute(
        INSERT, (report_id, data["description"], location["lon"], location["lat"])
    ).fetchone()
    return {"id": str(report_id), "created_at": created_at.isoformat()}, 201

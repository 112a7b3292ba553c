"""Benchmark of GET /api/v1/triage/audit on a large trail, against its own SQL run directly.

Run from the repository root:
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/NAME \\
        .venv/bin/python bench/audit.py [--events 1000000] [--runs 200]

The database named by BENCH_DATABASE_URL is DROPPED and rebuilt (postgis, pg_trgm, the
migrations), then filled with --events audit events in one INSERT ... SELECT: 20 actors, 50,000
reports, 8 actions, one event every 30 s going back in time. Redis is not used.

Each case is a page of 50 through the real app in this process (Flask's test client: token
check, query parsing, the service's one statement, JSON), then the statement the service ran,
captured, executed directly with psycopg. Both are timed --runs times, interleaved; the table
gives p50 and p95 in ms and the ratio of the p95s. The app adds the token lookup, the commit
and serialisation: GET /triage/me, timed first, shows what any staff request costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from flask_migrate import upgrade
from sqlalchemy import event, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stopapp import create_app  # noqa: E402
from stopapp.accounts import services as accounts  # noqa: E402
from stopapp.db import unit_of_work  # noqa: E402
from stopapp.dbadmin import recreate_database  # noqa: E402
from stopapp.extensions import db  # noqa: E402

ACTIONS = ["report.read", "report.claim", "report.transition", "report.tags", "report.note",
           "photo.read", "contact.read", "report.reply"]


def fill(app, events: int) -> dict:
    with app.app_context(), unit_of_work():
        users = [accounts.create_user(f"bench{n}@example.org", "supervisor",
                                      "bench password 123") for n in range(20)]
        _, token = accounts.issue_token(users[0])
        actor_ids = [str(u.id) for u in users]
    reports = [str(uuid.uuid4()) for _ in range(50_000)]
    with app.app_context():
        started = time.perf_counter()
        db.session.execute(text("""
            INSERT INTO audit_events (at, actor_id, action, report_id, detail)
            SELECT now() - make_interval(secs => i * 30),
                   (CAST(:actors AS uuid[]))[1 + i % 20],
                   (CAST(:actions AS text[]))[1 + (i / 7) % 8],
                   (CAST(:reports AS uuid[]))[1 + (i::bigint * 7919) % 50000],
                   jsonb_build_object('n', i)
            FROM generate_series(1, :events) AS i
        """), {"actors": actor_ids, "actions": ACTIONS, "reports": reports, "events": events})
        db.session.commit()
        db.session.execute(text("ANALYZE audit_events"))
        db.session.commit()
        print(f"filled {events:,} events in {time.perf_counter() - started:.1f} s")
    return {"token": token, "actor": actor_ids[3], "report": reports[123]}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        parser.error("set BENCH_DATABASE_URL (that database is dropped and rebuilt)")
    recreate_database(url)
    app = create_app({"DATABASE_URL": url, "PASSWORD_TIME_COST": 1, "PASSWORD_MEMORY_KIB": 1024})
    with app.app_context():
        upgrade()
    ids = fill(app, args.events)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ids['token']}"}
    first = client.get("/api/v1/triage/audit", headers=headers).get_json()
    cases = {
        "newest page": "",
        "second page (cursor)": f"cursor={first['next_cursor']}",
        "one report": f"report_id={ids['report']}",
        "actor + action": f"actor_id={ids['actor']}&action=contact.read",
        "action, a day 6 months ago": "action=report.read&from={}&to={}".format(
            *(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - d * 86400))
              for d in (183, 182))),
    }
    # The floor of any staff request here: token check, unit of work, a tiny JSON answer.
    me_ms = []
    for _ in range(args.runs):
        started = time.perf_counter()
        client.get("/api/v1/triage/me", headers=headers)
        me_ms.append((time.perf_counter() - started) * 1000)
    print(f"GET /triage/me (the floor of a staff request): p50 {statistics.median(me_ms):.2f} "
          f"ms, p95 {percentile(me_ms, 95):.2f} ms")
    raw_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    print(f"{'case':<30} {'API p50':>8} {'p95':>8} {'SQL p50':>8} {'p95':>8} {'p95 ratio':>10}")
    with psycopg.connect(raw_url) as raw, app.app_context():
        for name, query in cases.items():
            captured = []

            def capture(conn, cursor, statement, parameters, context, executemany,
                        captured=captured):
                if "FROM audit_events" in statement:
                    captured.append((statement, parameters))

            event.listen(db.engine, "before_cursor_execute", capture)
            response = client.get(f"/api/v1/triage/audit?{query}", headers=headers)
            event.remove(db.engine, "before_cursor_execute", capture)
            assert response.status_code == 200, response.get_data(as_text=True)
            assert len(captured) == 1, captured
            statement, parameters = captured[0]
            api_ms, sql_ms = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                client.get(f"/api/v1/triage/audit?{query}", headers=headers)
                api_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                raw.execute(statement, parameters).fetchall()
                sql_ms.append((time.perf_counter() - started) * 1000)
            items = len(response.get_json()["items"])
            print(f"{name + f' ({items})':<30} {statistics.median(api_ms):8.2f} "
                  f"{percentile(api_ms, 95):8.2f} {statistics.median(sql_ms):8.2f} "
                  f"{percentile(sql_ms, 95):8.2f} "
                  f"{percentile(api_ms, 95) / percentile(sql_ms, 95):9.2f}x")
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

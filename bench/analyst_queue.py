"""Benchmark of the analysts' queue and report view on a million realistic reports.

Run from the repository root:
    .venv/bin/python bench/analyst_queue.py [--count 1000000] [--reuse] [--iterations 300]

1. Load (skipped with --reuse when the database already holds --count reports): the database
   (stopapp_b6c by default, --database-url) is rebuilt by the migrations, the three London
   boroughs of tests/data/geo are imported as areas, and --count reports are written through
   COPY in chunks: points inside the boroughs (ST_GeneratePoints), around London and in a few
   other cities; descriptions and places built from a vocabulary; exploitation types, taxonomy
   tags, states, assignees, priorities and area codes; created over two years (the open queue
   mostly recent); with photos, possible-duplicate links, messages, notes and audit events on a
   share of them. The secondary indexes of `reports` are dropped for the load and rebuilt from
   their own definitions afterwards, then everything is ANALYZEd.
2. Timing: each workload goes through the real app (Flask's test client in this process, a
   bearer token, the real services and schemas) and, interleaved in the same run, the same SQL
   the service ran (captured from that request) straight on psycopg. Reported: p50 and p95 of
   each and the ratio app / SQL, and the indexes in each statement's plan (EXPLAIN ANALYZE);
   a sequential scan of `reports` is flagged.

Scratch state only: the bench database named above and Redis database 5 (not written by these
read paths). Ratios are the figure to compare; the machine is shared and noisy.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where its name would hide the
# standard library's `queue` (which redis imports): put the repository there instead.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path
                             if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import psycopg  # noqa: E402 - after the path setup
from psycopg.types.json import Jsonb  # noqa: E402
from sqlalchemy import event, make_url  # noqa: E402

from stopapp.dbadmin import recreate_database  # noqa: E402

DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/stopapp_b6c"
REDIS_URL = "redis://127.0.0.1:6379/5"
GEO = REPO / "tests" / "data" / "geo" / "london_hf_kc_westminster.geojson"
CHUNK = 50_000
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# -- the vocabulary --------------------------------------------------------------------------

CITIES = [  # (name, lon, lat, share of the reports outside London)
    ("Manchester", -2.2426, 53.4808, 0.25), ("Birmingham", -1.8904, 52.4862, 0.25),
    ("Leeds", -1.5491, 53.8008, 0.15), ("Glasgow", -4.2518, 55.8642, 0.15),
    ("Bristol", -2.5879, 51.4545, 0.1), ("Leicester", -1.1398, 52.6369, 0.1),
]
STREETS = ["King Street", "High Street", "Station Road", "Church Lane", "Mill Road",
           "Fulham Palace Road", "Edgware Road", "Harrow Road", "Portobello Road",
           "Uxbridge Road", "Goldhawk Road", "North End Road", "Oxford Street", "Queensway",
           "Praed Street", "Earls Court Road", "Kings Road", "Shepherds Bush Green"]
VENUES = ["car wash", "nail bar", "takeaway", "restaurant", "building site", "warehouse",
          "farm", "massage parlour", "flat above the shop", "hotel", "factory", "barber shop",
          "cannabis farm", "house", "garage", "launderette"]
PEOPLE = ["Several young men", "Two women", "A teenage boy", "Workers", "A group of girls",
          "Men who do not speak English", "A family", "Three boys in school uniform",
          "A woman", "Some lads"]
ACTIONS = ["sleep in the back of the", "are driven every morning to the",
           "work all night at the", "are never allowed to leave the",
           "hand their wages to a man at the", "look frightened at the",
           "are collected in a white van from the", "seem to live in the",
           "are shouted at by the manager of the", "have no protective equipment at the"]
DETAILS = ["Their passports are kept by the boss.", "A van with tinted windows comes at 5am.",
           "They look exhausted and underfed.", "The windows are covered from inside.",
           "Nobody speaks to customers.", "Cash only, no receipts.",
           "They are escorted to and from the shop.", "Lots of different men visit at night.",
           "A man collects money from them on Fridays.", "They say they owe money for travel.",
           "One had bruises on his arms.", "They sleep on mattresses in the garage.",
           "The same car picks them up every day.", "Children seem to be working late."]
TYPES = ["labour", "sexual", "domestic_servitude", "criminal", "child", "unknown"]
TYPE_WEIGHTS = list(itertools.accumulate([40, 25, 8, 12, 5, 10]))
TAGS = ["sector:car_wash", "sector:nail_bar_beauty", "sector:hospitality", "sector:construction",
        "sector:agriculture", "sector:manufacturing", "sector:domestic_work",
        "control:documents_withheld", "control:debt_bondage", "control:wages_withheld",
        "control:movement_restricted", "control:threats", "control:isolation",
        "control:excessive_hours"]
STATES = ["received", "new", "in_review", "actioned", "closed", "dismissed", "duplicate"]
STATE_WEIGHTS = list(itertools.accumulate([1, 22, 10, 15, 30, 18, 4]))
DISMISS = ["spam", "not_trafficking", "insufficient", "out_of_scope", "other"]


def description(rng: random.Random) -> str:
    street = rng.choice(STREETS)
    text = (f"{rng.choice(PEOPLE)} {rng.choice(ACTIONS)} {rng.choice(VENUES)} on {street}. "
            + " ".join(rng.sample(DETAILS, rng.randint(1, 4))))
    return text


# -- loading ---------------------------------------------------------------------------------


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def rebuild(url: str) -> None:
    from flask_migrate import upgrade

    from stopapp import create_app
    from stopapp.extensions import db

    recreate_database(url)
    app = create_app({"DATABASE_URL": url, "REDIS_URL": REDIS_URL})
    with app.app_context():
        upgrade()
        db.engine.dispose()


def seed_reference_data(conn, rng: random.Random) -> tuple[list, list, dict]:
    """Areas, staff and tag codes; returns (analyst ids, supervisor ids, points per borough)."""
    features = json.loads(GEO.read_text())["features"]
    for feature in features:
        conn.execute(
            "INSERT INTO areas (code, name, geom) VALUES (%s, %s, "
            "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)))",
            (feature["properties"]["LAD13CD"], feature["properties"]["LAD13NM"],
             json.dumps(feature["geometry"])),
        )
    staff = {"analyst": [], "supervisor": []}
    for role, number in (("analyst", 24), ("supervisor", 4)):
        for i in range(number):
            user_id = uuid.uuid4()
            staff[role].append(user_id)
            conn.execute(
                "INSERT INTO users (id, email, name, role, password_hash, active, "
                "failed_logins) VALUES (%s, %s, %s, %s, '!', true, 0)",
                (user_id, f"{role}{i}@bench.example.org", f"{role.title()} {i}", role),
            )
    for tag in TAGS:
        dimension, code = tag.split(":")
        conn.execute("INSERT INTO tag_codes (dimension, code, label, crosswalk, position) "
                     "VALUES (%s, %s, %s, '{}', 0) ON CONFLICT DO NOTHING",
                     (dimension, code, code.replace("_", " ")))
    points = {}
    for feature in features:
        code = feature["properties"]["LAD13CD"]
        points[code] = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 40000, %s)))"
            ".geom AS g FROM areas WHERE code = %s) p", (rng.randint(1, 10**6), code),
        ).fetchall()
    return staff["analyst"], staff["supervisor"], points


REPORT_COLUMNS = (
    "id, reference, idempotency_key_hash, request_hash, receipt_hash, description, "
    "exploitation_types, location, location_accuracy_m, location_source, place, occurred_at, "
    "occurred_precision, ongoing, people, language, app_platform, app_version, state, priority, "
    "priority_reasons, priority_override, assignee_id, tags, area_codes, triage_attempts, "
    "enrichment_failed, duplicate_of_id, dismiss_reason_code, version, created_at, updated_at"
)


class Generator:
    def __init__(self, rng, analysts, supervisors, points):
        self.rng, self.analysts, self.supervisors, self.points = rng, analysts, supervisors, points
        self.descriptions = [description(rng) for _ in range(20_000)]
        self.boroughs = list(points)
        self.cities = [c[:3] for c in CITIES]
        self.city_weights = list(itertools.accumulate(c[3] for c in CITIES))

    def place(self) -> tuple[str | None, list[str], str | None]:
        """(EWKT point or None, area codes, place text or None)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            code = rng.choice(self.boroughs)
            lon, lat = rng.choice(self.points[code])
            point, areas, town = (lon, lat), [code], "London"
        elif roll < 0.60:
            point, areas, town = (rng.uniform(-0.55, 0.25), rng.uniform(51.30, 51.70)), [], \
                "London"
        elif roll < 0.96:
            name, lon, lat = rng.choices(self.cities, cum_weights=self.city_weights)[0]
            point, areas, town = (rng.gauss(lon, 0.04), rng.gauss(lat, 0.025)), [], name
        else:
            point, areas, town = None, [], rng.choice(["London", "Leeds", "Luton"])
        place = f"{rng.choice(STREETS)}, {town}" if point is None or rng.random() < 0.6 else None
        ewkt = f"SRID=4326;POINT({point[0]:.6f} {point[1]:.6f})" if point else None
        return ewkt, areas, place

    def report(self, number: int, earlier: list) -> tuple:
        rng = self.rng
        state = rng.choices(STATES, cum_weights=STATE_WEIGHTS)[0]
        if state in ("received", "new", "in_review"):
            created = NOW - timedelta(seconds=rng.uniform(0, 120 * 86400))
        else:
            created = NOW - timedelta(seconds=rng.uniform(30 * 86400, 730 * 86400))
        ewkt, areas, place = self.place()
        assignee = None
        if state in ("in_review",) or (state in ("actioned", "closed") and rng.random() < 0.9) \
                or (state in ("dismissed", "duplicate") and rng.random() < 0.5):
            assignee = rng.choice(self.analysts if rng.random() < 0.9 else self.supervisors)
        tags = []
        if state != "received" and rng.random() < (0.3 if state == "new" else 0.8):
            tags = rng.sample(TAGS, rng.randint(1, 3))
            if rng.random() < 0.05:
                tags.append(f"free:{rng.choice(VENUES)}")
        kinds = rng.choices(TYPES, cum_weights=TYPE_WEIGHTS, k=rng.choice([1, 1, 1, 2]))
        types = list(dict.fromkeys(kinds))
        priority = None if state == "received" else int(rng.betavariate(2, 4) * 100)
        reasons = [] if priority is None else rng.sample(
            ["minors", "ongoing", "recent", "photos", "corroborated", "precise_location"],
            rng.randint(0, 3))
        hashes = os.urandom(96)
        report_id = uuid.uuid4()
        duplicate_of = rng.choice(earlier) if state == "duplicate" and earlier else None
        if state == "duplicate" and duplicate_of is None:
            state = "closed"
        return (
            report_id, f"R-{created.year}-{number:07d}", hashes[:32], hashes[32:64], hashes[64:],
            rng.choice(self.descriptions), types, ewkt,
            rng.choice([5.0, 10.0, 20.0, 50.0, 200.0, 1000.0]) if ewkt else None,
            rng.choice(["gps", "gps", "map", "text"]) if ewkt else None, place,
            created - timedelta(hours=rng.uniform(0, 72)) if rng.random() < 0.7 else None,
            rng.choice(["exact", "day", "week", "unknown"]), rng.random() < 0.3,
            Jsonb({"victims": rng.randint(1, 8), "minors": rng.random() < 0.1})
            if rng.random() < 0.4 else None,
            rng.choice(["en", "en", "en", "lt", "es", "ar"]), rng.choice(["android", "ios"]),
            "4.1.0", state, priority, reasons,
            rng.randint(60, 100) if priority is not None and rng.random() < 0.01 else None,
            assignee, tags, areas, 1, rng.random() < 0.002, duplicate_of,
            rng.choice(DISMISS) if state == "dismissed" else None, 1 + len(tags) // 2,
            created, created + timedelta(hours=rng.uniform(0, 48)),
        )


def copy_rows(cur, table: str, columns: str, rows: list) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def children(gen: Generator, reports: list) -> dict[str, list]:
    """Photos, links, messages, notes and audit events for a share of `reports`."""
    rng = gen.rng
    out = {"photos": [], "report_links": [], "report_messages": [], "report_notes": [],
           "audit_events": []}
    for r in reports:
        report_id, state, assignee, created = r[0], r[18], r[22], r[30]
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 3)):
                digest = os.urandom(32).hex()
                status = rng.choices(["ready", "processing", "rejected"], [85, 5, 10])[0]
                ready = status == "ready"
                out["photos"].append((
                    uuid.uuid4(), report_id, os.urandom(32), os.urandom(32),
                    status, None if status != "rejected" else "undecodable",
                    f"{digest[:2]}/{digest[2:4]}/{digest}.jpg" if ready else None,
                    f"{digest[:2]}/{digest[2:4]}/{digest}.t.jpg" if ready else None,
                    2048 if ready else None, 1536 if ready else None, 1, created))
        if rng.random() < 0.1:
            out["report_messages"].append(
                (uuid.uuid4(), report_id, "reporter", None, rng.choice(DETAILS),
                 created + timedelta(hours=1)))
        if assignee and rng.random() < 0.3:
            out["report_notes"].append((uuid.uuid4(), report_id, assignee,
                                        "Checked the address.", created + timedelta(hours=5)))
        if assignee:
            out["audit_events"].append((created + timedelta(hours=2), assignee, "report.claim",
                                        report_id, Jsonb({"to": str(assignee)})))
        if state not in ("received", "new", "in_review"):
            out["audit_events"].append((created + timedelta(hours=6), assignee, "report.transition",
                                        report_id, Jsonb({"from": "in_review", "to": state})))
    sample = rng.sample(reports, max(2, len(reports) // 20)) if len(reports) > 2 else []
    for a, b in zip(sample[::2], sample[1::2], strict=False):
        similarity, hours, distance = rng.uniform(0.3, 0.9), rng.uniform(0, 300), \
            rng.uniform(0, 250)
        for x, y in ((a, b), (b, a)):
            out["report_links"].append((x[0], y[0], distance, hours, similarity, False))
    return out


CHILD_COLUMNS = {
    "photos": "id, report_id, idempotency_key_hash, upload_digest, status, reject_reason, "
              "display_key, thumb_key, width, height, attempts, created_at",
    "report_links": "report_id, other_id, distance_m, hours_apart, text_similarity, photo_match",
    "report_messages": "id, report_id, sender, author_id, body, created_at",
    "report_notes": "id, report_id, author_id, body, created_at",
    "audit_events": "at, actor_id, action, report_id, detail",
}


def load(url: str, count: int, seed: int) -> None:
    started = time.monotonic()
    rng = random.Random(seed)
    rebuild(url)
    with psycopg.connect(plain(url)) as conn:
        analysts, supervisors, points = seed_reference_data(conn, rng)
        conn.commit()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reports' AND "
            "indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'reports'::regclass)").fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.commit()
        # The generated rows are consistent by construction: skip the per-row foreign key
        # triggers for the load (this session only).
        conn.execute("SET session_replication_role = replica")
        gen = Generator(rng, analysts, supervisors, points)
        done, earlier = 0, []
        with conn.cursor() as cur:
            while done < count:
                size = min(CHUNK, count - done)
                rows = []
                for i in range(size):
                    rows.append(gen.report(done + i + 1, earlier))
                    if len(earlier) < 5000 or rng.random() < 0.01:
                        earlier.append(rows[-1][0])
                copy_rows(cur, "reports", REPORT_COLUMNS, rows)
                for table, child_rows in children(gen, rows).items():
                    copy_rows(cur, table, CHILD_COLUMNS[table], child_rows)
                conn.commit()
                done += size
                rate = done / (time.monotonic() - started)
                print(f"  loaded {done:,} reports ({rate:,.0f}/s)", flush=True)
        conn.execute("SET maintenance_work_mem = '256MB'")
        for name, definition in indexes:
            step = time.monotonic()
            conn.execute(definition)
            conn.commit()
            print(f"  rebuilt {name} in {time.monotonic() - step:.1f} s", flush=True)
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    print(f"loaded {count:,} reports in {time.monotonic() - started:.0f} s", flush=True)


# -- timing ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def plan_indexes(conn, statement: str, params) -> tuple[list[str], bool]:
    """Index names in the plan of a SELECT, and whether `reports` is read sequentially."""
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).fetchone()[0]
    names, seq = [], False
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            names.append(node["Index Name"])
        if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == "reports":
            seq = True
        stack.extend(node.get("Plans", []))
    return sorted(set(names)), seq


def service_statements(captured: list) -> list:
    """The statements of the service itself: not the token lookup and its user."""
    return [(s, p) for s, p in captured
            if "api_tokens" not in s and "users.password_hash" not in s]


def measure(url: str, iterations: int, warmup: int) -> None:
    from sqlalchemy import select

    from stopapp import create_app
    from stopapp.accounts import services as accounts
    from stopapp.accounts.models import User
    from stopapp.db import unit_of_work
    from stopapp.extensions import db

    app = create_app({"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "RATELIMIT_ENABLED": "0"})
    captured: list = []
    with app.app_context():
        with unit_of_work():
            analyst = db.session.scalar(select(User).where(User.role == "analyst").limit(1))
            _, token = accounts.issue_token(analyst, "bench")
        engine = db.engine
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, statement, params, ctx, many: captured.append(
                     (statement, params)))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    queue = "/api/v1/triage/reports"

    first = client.get(queue, headers=headers).get_json()
    with psycopg.connect(plain(url), autocommit=True) as conn:
        busy = conn.execute(
            "SELECT r.id FROM reports r WHERE state = 'in_review' AND EXISTS (SELECT 1 FROM "
            "photos p WHERE p.report_id = r.id) AND EXISTS (SELECT 1 FROM report_links l WHERE "
            "l.report_id = r.id) LIMIT 1").fetchone()[0]
    workloads = [
        ("default queue page", f"{queue}"),
        ("3 filters + text", f"{queue}?type=labour&tag=sector:car_wash&area=E09000013&q=van"),
        ("second page (cursor)", f"{queue}?cursor={first['next_cursor']}"),
        ("bbox page", f"{queue}?bbox=-0.23,51.49,-0.17,51.52"),
        ("report detail", f"{queue}/{busy}"),
    ]
    results = []
    with psycopg.connect(plain(url), autocommit=True) as raw:
        for name, path in workloads:
            captured.clear()
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            statements = service_statements(captured)
            items = len(answer.get_json().get("items", [])) if "items" in answer.get_json() \
                else None
            select_statements = [(s, p) for s, p in statements if s.lstrip().startswith("SELECT")]
            indexes, seq = set(), False
            for statement, params in select_statements:
                names, sequential = plan_indexes(raw, statement, params)
                indexes.update(names)
                seq = seq or sequential
            api_ms, sql_ms = [], []

            def run_sql(statements=statements):
                if len(statements) == 1:
                    raw.execute(*statements[0]).fetchall()
                    return
                with raw.transaction():
                    for statement, params in statements:
                        cursor = raw.execute(statement, params)
                        if cursor.description is not None:
                            cursor.fetchall()

            for i in range(warmup + iterations):
                t0 = time.perf_counter()
                response = client.get(path, headers=headers)
                t1 = time.perf_counter()
                run_sql()
                t2 = time.perf_counter()
                assert response.status_code == 200
                if i >= warmup:
                    api_ms.append((t1 - t0) * 1000)
                    sql_ms.append((t2 - t1) * 1000)
            results.append((name, items, len(statements), api_ms, sql_ms, sorted(indexes), seq))

    print()
    print("| workload | rows | SQL statements | app p50 / p95 ms | same SQL p50 / p95 ms | "
          "ratio p50 / p95 | indexes in the plan |")
    print("|---|---|---|---|---|---|---|")
    for name, items, count, api_ms, sql_ms, indexes, seq in results:
        a50, a95 = statistics.median(api_ms), percentile(api_ms, 95)
        s50, s95 = statistics.median(sql_ms), percentile(sql_ms, 95)
        flag = " **SEQ SCAN of reports**" if seq else ""
        print(f"| {name} | {items if items is not None else 1} | {count} | {a50:.1f} / {a95:.1f} "
              f"| {s50:.1f} / {s95:.1f} | {a50 / s50:.2f}x / {a95 / s95:.2f}x | "
              f"{', '.join(indexes)}{flag} |")
    with app.app_context():
        db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the loaded database if it already holds --count reports")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    if not make_url(args.database_url).database.startswith("stopapp_b"):
        raise SystemExit("refusing: the bench rebuilds its database; name it stopapp_b...")
    existing = None
    if args.reuse:
        try:
            with psycopg.connect(plain(args.database_url)) as conn:
                existing = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        except psycopg.Error:
            existing = None
    if existing != args.count:
        load(args.database_url, args.count, args.seed)
    measure(args.database_url, args.iterations, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())

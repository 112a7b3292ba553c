"""Benchmark of the triage job (areas, priority, possible duplicates) on a large database.

Run from the repository root:  python bench/triage.py [--reports N] [--database NAME] [--keep]

It rebuilds a scratch database (stopapp_bench_triage unless --database names another one that
you own: it is dropped first), runs the migrations, imports the three London boroughs and
loads N reports (default 500,000) in one INSERT ... SELECT: 90% spread evenly over greater
London, 10% within 1 km of one point (a hot spot), created over a year, with eight kinds of
description. Then, at the hot spot and at a typical point, it stores one new report and times
(median and p90 of 15 runs, each rolled back) the whole enrichment and the duplicate-search
statement alone.
"""

import argparse
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flask_migrate import upgrade  # noqa: E402 - after the path setup
from sqlalchemy import select, text  # noqa: E402

from stopapp import create_app  # noqa: E402
from stopapp.areas import services as areas  # noqa: E402
from stopapp.db import unit_of_work  # noqa: E402
from stopapp.dbadmin import drop_database, recreate_database  # noqa: E402
from stopapp.extensions import db  # noqa: E402
from stopapp.reports import services as reports  # noqa: E402
from stopapp.review import enrichment  # noqa: E402
from stopapp.review.models import ReportLink  # noqa: E402

GEO = REPO / "tests" / "data" / "geo" / "london_hf_kc_westminster.geojson"
HOT_SPOT = (-0.2240, 51.4927)
TYPICAL = (-0.1000, 51.4500)
RUNS = 15
DESCRIPTION = "Workers sleep in the back of the car wash and are driven away at night."

LOAD = text("""
INSERT INTO reports (id, reference, idempotency_key_hash, request_hash, receipt_hash,
    description, exploitation_types, location, location_accuracy_m, location_source,
    occurred_precision, ongoing, state, version, created_at, updated_at)
SELECT gen_random_uuid(), 'B-' || g, sha256(('k' || g)::bytea), sha256(('r' || g)::bytea),
    sha256(('c' || g)::bytea),
    (ARRAY['Workers sleep in the back of the car wash and are driven away at night.',
           'A woman works as a maid in the flat upstairs and is never allowed out.',
           'Girls are brought to the massage parlour late at night by two men in a car.',
           'Men on the building site have no safety gear and their passports were taken.',
           'The nail bar staff live above the shop and never seem to leave.',
           'Young boys sell drugs at the station for an older man who watches them.',
           'A van collects people from the corner every morning at five.',
           'The restaurant kitchen workers sleep in the basement.'])[1 + g % 8]
        || ' ' || substr(md5(g::text), 1, 6),
    ARRAY['labour'],
    CASE WHEN g % 10 = 0
         THEN ST_Project(ST_SetSRID(ST_MakePoint(:hot_lon, :hot_lat), 4326)::geography,
                         1000 * sqrt(random()), 2 * pi() * random())
         ELSE ST_SetSRID(ST_MakePoint(-0.5 + random() * 0.8, 51.3 + random() * 0.4),
                         4326)::geography END,
    20, 'gps', 'unknown', false, 'new', 1, now() - random() * interval '365 days', now()
FROM generate_series(1, :n) g
""")


def build(app, n: int) -> None:
    with app.app_context():
        upgrade()
        with unit_of_work(), GEO.open("rb") as source:
            areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
        start = time.perf_counter()
        with unit_of_work():
            db.session.execute(LOAD, {"n": n, "hot_lon": HOT_SPOT[0], "hot_lat": HOT_SPOT[1]})
        db.session.execute(text("ANALYZE reports"))
        db.session.commit()
        print(f"loaded {n:,} reports in {time.perf_counter() - start:.0f} s")


def timed(action) -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        db.session.flush()
        times.append((time.perf_counter() - start) * 1000)
        db.session.rollback()
    return sorted(times)


def measure(app, label: str, position: tuple[float, float]) -> None:
    with app.app_context():
        with unit_of_work():
            report_id = reports.submit_report({
                "description": DESCRIPTION, "exploitation_types": ["labour"],
                "location": {"lon": position[0], "lat": position[1], "accuracy_m": 20,
                             "source": "gps"},
            }, uuid.uuid4()).report_id
        nearby = db.session.scalar(text(
            "SELECT count(*) FROM reports o, reports me WHERE me.id = :id AND o.id <> me.id "
            "AND ST_DWithin(o.location, me.location, 250)"), {"id": report_id})
        whole = timed(lambda: enrichment.enrich_report(report_id))
        enrichment.enrich_report(report_id)
        linked = len(db.session.scalars(
            select(ReportLink.other_id).where(ReportLink.report_id == report_id)).all())
        db.session.rollback()
        search = timed(lambda: enrichment.link_possible_duplicates(report_id))
    p90 = int(RUNS * 0.9)
    print(f"{label}: {nearby:,} reports within 250 m, {linked} linked; enrichment "
          f"{statistics.median(whole):.1f} ms (p90 {whole[p90]:.1f}), duplicate search "
          f"{statistics.median(search):.1f} ms (p90 {search[p90]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=500_000)
    parser.add_argument("--database", default="stopapp_bench_triage",
                        help="scratch database to rebuild (it is dropped first)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{args.database}"
    logging.disable(logging.WARNING)  # Redis is deliberately unreachable: no job is queued
    recreate_database(url)
    app = create_app({"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/0"})
    try:
        build(app, args.reports)
        measure(app, "hot spot", HOT_SPOT)
        measure(app, "typical point", TYPICAL)
    finally:
        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()

"""Areas: `flask areas import` on the real London boundaries, which areas cover a point, and
GET /api/v1/triage/areas.

The points near a border are computed from the real geometry (a point on the shared boundary,
moved a few metres square to it with ST_Project), not guessed coordinates.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from stopapp.accounts import services as accounts
from stopapp.areas import services as areas
from stopapp.areas.models import Area
from stopapp.audit.models import AuditEvent
from stopapp.db import unit_of_work
from stopapp.errors import ForbiddenError
from stopapp.extensions import db
from tests.conftest import TESTDATA
from tests.helpers import assert_problem

GEO = TESTDATA / "geo" / "london_hf_kc_westminster.geojson"
HF, KC, WESTMINSTER = "E09000013", "E09000020", "E09000033"
NAMES = {HF: "Hammersmith and Fulham", KC: "Kensington and Chelsea",
         WESTMINSTER: "Westminster"}
# A point in Greenwich, far from the three boroughs.
GREENWICH = (-0.0077, 51.4826)
BOW_TIE = {"type": "Polygon", "coordinates": [[[-0.30, 51.40], [-0.29, 51.41], [-0.29, 51.40],
                                               [-0.30, 51.41], [-0.30, 51.40]]]}


def boroughs() -> dict:
    return json.loads(GEO.read_text())


def feature(code: str, name: str, geometry: dict) -> dict:
    return {"type": "Feature", "properties": {"LAD13CD": code, "LAD13NM": name},
            "geometry": geometry}


def write(tmp_path: Path, collection: dict, name: str = "areas.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(collection))
    return path


def import_file(runner, path: Path, *options: str):
    return runner.invoke(args=["areas", "import", str(path), "--code-property", "LAD13CD",
                               "--name-property", "LAD13NM", *options])


def stored(app) -> dict[str, str]:
    with app.app_context():
        return dict(db.session.execute(select(Area.code, Area.name)).all())


def point(lon: float, lat: float):
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def codes_at(app, wkt: str) -> list[str]:
    with app.app_context():
        return areas.area_codes_covering(func.ST_GeomFromText(wkt, 4326))


def latest_import():
    """This test's import event: the audit trail is append-only, so imports committed by other
    modules (the browser tests' seeds) stay in it."""
    return (select(AuditEvent).where(AuditEvent.action == "area.import")
            .order_by(AuditEvent.id.desc()).limit(1))


@pytest.fixture
def imported(app, runner):
    result = import_file(runner, GEO)
    assert result.exit_code == 0, result.output
    return app


# The longest stretch of A's boundary lying within a metre of B (the shared border), points
# at fractions of it, the local direction of the border there, and points `offset_m` square to
# it on either side; with each side point's distance to the border line as a check.
BORDER_POINTS = text("""
WITH a AS (SELECT geom FROM areas WHERE code = :a), b AS (SELECT geom FROM areas WHERE code = :b),
line AS (
    SELECT (ST_Dump(ST_LineMerge(ST_CollectionExtract(ST_Intersection(
        ST_Boundary(a.geom), ST_Buffer(b.geom::geography, 1)::geometry), 2)))).geom AS l
    FROM a, b
), border AS (SELECT l FROM line ORDER BY ST_Length(l::geography) DESC LIMIT 1),
at AS (
    SELECT ST_LineInterpolatePoint(l, :f)::geography AS p, l,
           ST_Azimuth(
               ST_LineInterpolatePoint(l, :f - 5 / ST_Length(l::geography))::geography,
               ST_LineInterpolatePoint(l, :f + 5 / ST_Length(l::geography))::geography) AS az
    FROM border
), sides AS (
    SELECT l, ST_Project(p, :offset_m, az + pi() / 2) AS left_p,
           ST_Project(p, :offset_m, az - pi() / 2) AS right_p
    FROM at
)
SELECT ST_AsText(left_p) AS left_wkt, ST_AsText(right_p) AS right_wkt,
       ST_Distance(left_p, l::geography) AS left_m, ST_Distance(right_p, l::geography) AS right_m,
       ST_Length(l::geography) AS border_m
FROM sides
""")


def border_points(app, a: str, b: str, fraction: float, offset_m: float = 3.0):
    with app.app_context():
        return db.session.execute(
            BORDER_POINTS, {"a": a, "b": b, "f": fraction, "offset_m": offset_m}
        ).one()


# --------------------------------------------------------------------------------------------
# Importing


def test_import_stores_the_three_boroughs_valid_and_audited(imported, runner):
    assert stored(imported) == NAMES
    with imported.app_context():
        assert db.session.scalar(select(func.bool_and(func.ST_IsValid(Area.geom))))
        event = db.session.scalars(latest_import()).one()
    assert event.actor_id is None
    assert sorted(event.detail["created"]) == sorted(NAMES)
    assert event.detail["replaced"] == []


def test_import_reports_what_it_did(runner):
    result = import_file(runner, GEO)
    assert result.exit_code == 0
    assert "imported 3 area(s): 3 new, 0 replaced (from EPSG:4326)" in result.stdout


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
@pytest.mark.parametrize(("a", "b"), [(HF, KC), (KC, WESTMINSTER)],
                         ids=["hf-kc", "kc-westminster"])
def test_points_three_metres_either_side_of_a_border_are_in_one_borough_each(
    imported, a, b, fraction
):
    sides = border_points(imported, a, b, fraction)
    assert sides.border_m > 5000  # the real shared border (7.6 km and 9.5 km)
    assert 2.5 < sides.left_m < 3.5 and 2.5 < sides.right_m < 3.5
    assert sorted([codes_at(imported, sides.left_wkt), codes_at(imported, sides.right_wkt)]) == (
        sorted([[a], [b]])
    )


def test_a_point_on_the_shared_border_is_in_both_boroughs(imported):
    # The two boundaries come from different ward unions and share no vertex exactly, but
    # hundreds of H&F's boundary vertices lie on K&C's boundary: the border itself.
    # (Written with 20 decimals: a rounded vertex would move off the border.)
    with imported.app_context():
        on_border = db.session.scalars(text(
            "SELECT ST_AsText(v.geom, 20) FROM areas a, areas b, ST_DumpPoints(a.geom) v "
            "WHERE a.code = :a AND b.code = :b AND ST_Covers(b.geom, v.geom) ORDER BY v.path"
        ), {"a": HF, "b": KC}).all()
    assert len(on_border) > 100
    for wkt in on_border[::40]:
        assert codes_at(imported, wkt) == [HF, KC]


def test_a_point_outside_every_area_is_in_none(imported):
    with imported.app_context():
        assert areas.area_codes_covering(point(*GREENWICH)) == []


def test_reimport_replaces_name_and_geometry_and_keeps_the_rest(imported, runner, tmp_path):
    changed = boroughs()
    hf, kc = changed["features"][0], changed["features"][1]
    hf["properties"]["LAD13NM"] = "H&F (renamed)"
    kc["geometry"] = {"type": "Polygon", "coordinates": [[[*GREENWICH], [GREENWICH[0] + 0.01,
                      GREENWICH[1]], [GREENWICH[0] + 0.01, GREENWICH[1] + 0.01],
                      [GREENWICH[0], GREENWICH[1] + 0.01], [*GREENWICH]]]}
    changed["features"] = [hf, kc]
    result = import_file(runner, write(tmp_path, changed))
    assert result.exit_code == 0, result.output
    assert "0 new, 2 replaced" in result.stdout
    assert stored(imported) == {**NAMES, HF: "H&F (renamed)"}
    with imported.app_context():
        inside_new_kc = point(GREENWICH[0] + 0.005, GREENWICH[1] + 0.005)
        assert areas.area_codes_covering(inside_new_kc) == [KC]
        assert areas.area_codes_covering(point(-0.1925, 51.5010)) == []  # old K&C: gone


def test_legacy_crs_in_british_national_grid_is_transformed_back(app, runner, tmp_path):
    # The real boroughs, transformed by PostGIS into EPSG:27700 and written as a GeoJSON 2008
    # file with a `crs` member, as older GIS exports are.
    with app.app_context():
        features = [
            feature(f["properties"]["LAD13CD"], f["properties"]["LAD13NM"], json.loads(
                db.session.scalar(text(
                    "SELECT ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326),"
                    " 27700), 3)"), {"g": json.dumps(f["geometry"])})
            ))
            for f in boroughs()["features"]
        ]
    assert features[0]["geometry"]["coordinates"][0][0][0] > 500_000  # metres, not degrees
    legacy = {"type": "FeatureCollection", "features": features,
              "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}}}
    result = import_file(runner, write(tmp_path, legacy))
    assert result.exit_code == 0, result.output
    assert "(from EPSG:27700)" in result.stdout
    with app.app_context():
        for f in boroughs()["features"]:
            # Within a few centimetres of the original WGS 84 boundary.
            gap_m = db.session.scalar(text(
                "SELECT ST_HausdorffDistance(ST_Transform(geom, 27700), ST_Transform("
                "ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), 27700)) FROM areas WHERE code = :c"
            ), {"g": json.dumps(f["geometry"]), "c": f["properties"]["LAD13CD"]})
            assert gap_m < 0.05


def test_unknown_crs_is_refused(runner, tmp_path, app):
    odd = {**boroughs(), "crs": {"type": "name", "properties": {"name": "urn:x:local:grid"}}}
    result = import_file(runner, write(tmp_path, odd))
    assert result.exit_code == 1
    assert "crs: urn:x:local:grid" in result.stderr
    assert stored(app) == {}


def test_bow_tie_is_refused_with_postgis_reason_and_nothing_is_imported(app, runner, tmp_path):
    collection = boroughs()
    collection["features"].append(feature("BOW", "Bow tie", BOW_TIE))
    result = import_file(runner, write(tmp_path, collection))
    assert result.exit_code == 1
    assert "feature 4 (BOW): Self-intersection" in result.stderr
    assert stored(app) == {}  # not even the three valid boroughs


def test_bow_tie_with_repair_is_imported_as_its_two_triangles(app, runner, tmp_path):
    collection = boroughs()
    collection["features"].append(feature("BOW", "Bow tie", BOW_TIE))
    result = import_file(runner, write(tmp_path, collection), "--repair")
    assert result.exit_code == 0, result.output
    assert "repaired BOW with ST_MakeValid" in result.stderr
    assert stored(app) == {**NAMES, "BOW": "Bow tie"}
    with app.app_context():
        valid, parts = db.session.execute(
            select(func.ST_IsValid(Area.geom), func.ST_NumGeometries(Area.geom))
            .where(Area.code == "BOW")
        ).one()
        assert (valid, parts) == (True, 2)
        assert areas.area_codes_covering(point(-0.2980, 51.4050)) == ["BOW"]  # left triangle
        assert areas.area_codes_covering(point(-0.2950, 51.4020)) == []  # below the crossing


def test_repair_that_leaves_no_area_is_refused(app, runner, tmp_path):
    flat = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}
    result = import_file(runner, write(tmp_path, {"type": "FeatureCollection", "features": [
        feature("FLAT", "Flat", flat)]}), "--repair")
    assert result.exit_code == 1
    assert "feature 1 (FLAT): no polygon left" in result.stderr
    assert stored(app) == {}


def test_features_that_are_not_polygons_are_refused_and_listed(app, runner, tmp_path):
    collection = boroughs()
    collection["features"] += [
        feature("PT", "A point", {"type": "Point", "coordinates": [-0.2, 51.5]}),
        feature("LN", "A line", {"type": "LineString", "coordinates": [[-0.2, 51.5],
                                                                       [-0.1, 51.5]]}),
        {"type": "Feature", "properties": {"LAD13CD": "NONE", "LAD13NM": "x"}, "geometry": None},
    ]
    result = import_file(runner, write(tmp_path, collection), "--repair")
    assert result.exit_code == 1
    assert "feature 4 (PT): Point is not a Polygon or MultiPolygon" in result.stderr
    assert "feature 5 (LN): LineString is not a Polygon or MultiPolygon" in result.stderr
    assert "feature 6 (NONE): no geometry is not a Polygon or MultiPolygon" in result.stderr
    assert stored(app) == {}


def test_missing_properties_repeated_codes_and_bad_coordinates_are_refused(app, runner,
                                                                           tmp_path):
    collection = boroughs()
    square = copy.deepcopy(collection["features"][0]["geometry"])
    collection["features"] += [
        {"type": "Feature", "properties": {"LAD13CD": "X1"}, "geometry": square},
        feature(HF, "Again", square),
        feature("X2", "Broken", {"type": "Polygon", "coordinates": [[["a", 1]]]}),
    ]
    result = import_file(runner, write(tmp_path, collection))
    assert result.exit_code == 1
    assert "feature 4 (X1): missing property 'LAD13CD' or 'LAD13NM'" in result.stderr
    assert f"feature 5 ({HF}): code {HF} repeats feature 1" in result.stderr
    assert "feature 6 (X2): malformed coordinates" in result.stderr
    assert stored(app) == {}


def test_failed_reimport_leaves_the_previous_areas_untouched(imported, runner, tmp_path):
    collection = boroughs()
    for f in collection["features"]:
        f["properties"]["LAD13NM"] += " (new)"
    collection["features"].append(feature("BOW", "Bow tie", BOW_TIE))
    result = import_file(runner, write(tmp_path, collection))
    assert result.exit_code == 1
    assert stored(imported) == NAMES


def test_file_that_is_not_geojson_is_refused(app, runner, tmp_path):
    path = tmp_path / "x.geojson"
    path.write_text("not json")
    assert import_file(runner, path).exit_code == 1
    assert import_file(runner, write(tmp_path, {"type": "Topology"})).exit_code == 1
    assert stored(app) == {}


def test_progress_is_shown_on_a_large_file(app, runner, tmp_path):
    squares = [
        feature(f"SQ{n:04d}", f"Square {n}", {"type": "Polygon", "coordinates": [[
            [n * 0.001, 0], [n * 0.001 + 0.0005, 0], [n * 0.001 + 0.0005, 0.0005],
            [n * 0.001, 0.0005], [n * 0.001, 0]]]})
        for n in range(1200)
    ]
    result = import_file(runner, write(tmp_path, {"type": "FeatureCollection",
                                                  "features": squares}))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["read 500/1200 features", "read 1000/1200 features",
                                          "read 1200/1200 features"]
    assert len(stored(app)) == 1200


def test_only_an_admin_may_import_areas(app):
    with app.app_context():
        supervisor = accounts.create_user("sup@example.org", "supervisor", "correct horse battery")
        with GEO.open("rb") as source, pytest.raises(ForbiddenError):
            areas.import_areas(supervisor, source, code_property="LAD13CD",
                               name_property="LAD13NM")
        admin = accounts.create_user("adm@example.org", "admin", "correct horse battery")
        with GEO.open("rb") as source:
            result = areas.import_areas(admin, source, code_property="LAD13CD",
                                        name_property="LAD13NM")
        assert sorted(result.created) == sorted(NAMES)
        assert db.session.scalars(latest_import()).one().actor_id == admin.id


# --------------------------------------------------------------------------------------------
# GET /api/v1/triage/areas


def token_for(app, role: str) -> str:
    with app.app_context(), unit_of_work():
        user = accounts.create_user(f"{role}@example.org", role, "correct horse battery")
        return accounts.issue_token(user, "test")[1]


def test_staff_get_the_areas_as_codes_and_names(imported, client):
    token = token_for(imported, "analyst")
    response = client.get("/api/v1/triage/areas", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == [
        {"code": HF, "name": NAMES[HF]},
        {"code": KC, "name": NAMES[KC]},
        {"code": WESTMINSTER, "name": NAMES[WESTMINSTER]},
    ]


def test_areas_need_a_token(client):
    assert_problem(client.get("/api/v1/triage/areas"), 401)

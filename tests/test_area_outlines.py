"""`area_outlines`: the areas' simplified outlines as GeoJSON, for staff maps."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from stopapp.accounts import services as accounts
from stopapp.areas import services as areas
from stopapp.areas.models import Area
from stopapp.errors import UnauthorizedError
from stopapp.extensions import db
from tests.conftest import TESTDATA

GEO = TESTDATA / "geo" / "london_hf_kc_westminster.geojson"
HF, KC, WESTMINSTER = "E09000013", "E09000020", "E09000033"


@pytest.fixture
def analyst(app):
    with GEO.open("rb") as source:
        areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
    return accounts.create_user("ana@example.org", "analyst", "correct horse battery")


def test_outlines_are_a_feature_collection_with_code_and_name_by_name(analyst):
    outlines = areas.area_outlines(analyst)
    assert outlines["type"] == "FeatureCollection"
    assert [f["properties"] for f in outlines["features"]] == [
        {"code": HF, "name": "Hammersmith and Fulham"},
        {"code": KC, "name": "Kensington and Chelsea"},
        {"code": WESTMINSTER, "name": "Westminster"},
    ]


def test_outlines_are_simplified_and_still_valid(analyst):
    outline = areas.area_outlines(analyst, codes=[KC])["features"][0]["geometry"]
    points = sum(len(ring) for polygon in (
        outline["coordinates"] if outline["type"] == "MultiPolygon" else [outline["coordinates"]]
    ) for ring in polygon)
    stored = db.session.scalar(select(func.ST_NPoints(Area.geom)).where(Area.code == KC))
    assert points < stored
    assert db.session.scalar(select(func.ST_IsValid(func.ST_GeomFromGeoJSON(json.dumps(outline)))))


def test_codes_limit_the_outlines_and_unknown_codes_are_left_out(analyst):
    outlines = areas.area_outlines(analyst, codes=[WESTMINSTER, "NOPE"])
    assert [f["properties"]["code"] for f in outlines["features"]] == [WESTMINSTER]
    assert areas.area_outlines(analyst, codes=[])["features"] == []


def test_outlines_are_for_staff_only(app):
    with pytest.raises(UnauthorizedError):
        areas.area_outlines(None)

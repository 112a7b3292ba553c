"""Suggested recipients by polygon, with the real London boroughs in PostGIS."""

from __future__ import annotations

import pytest

from stopapp.db import unit_of_work
from tests.forwarding.conftest import (
    HF,
    IN_WESTMINSTER,
    KC,
    OUTSIDE,
    WESTMINSTER,
    border_points,
    new_report,
)

URL = "/api/v1/triage/reports/{}/recipients"


@pytest.fixture
def routed(scene_at, smtp_server):
    scene = scene_at(smtp_server().port)
    ids = {
        "hf": scene.authority("H&F Police", ["hf@example.org"], [HF]),
        "kc": scene.authority("K&C Police", ["kc@example.org"], [KC]),
        "wm_labour": scene.authority("Westminster Labour", ["wm@example.org"], [WESTMINSTER],
                                     exploitation_types=["labour"]),
        "wm_sexual": scene.authority("Westminster Vice", ["vice@example.org"], [WESTMINSTER],
                                     exploitation_types=["sexual"]),
        "retired": scene.authority("Old Unit", ["old@example.org"], [HF], active=False),
    }
    with scene.app.app_context(), unit_of_work():
        scene.border = border_points(metres=5)
    return scene, {v: k for k, v in ids.items()}


def suggested(scene, names, lat, lon, **fields):
    report_id, _ = new_report(scene.app, lat=lat, lon=lon, **fields)
    response = scene.client.get(URL.format(report_id), headers=scene.analyst.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return ({names[r["authority_id"]]: r["why"] for r in body["suggested"]},
            sorted(names[r["authority_id"]] for r in body["others"]))


def test_points_metres_either_side_of_the_hf_kc_border_go_to_their_own_borough(routed):
    scene, names = routed
    in_hf, in_kc = scene.border
    hf, others = suggested(scene, names, *in_hf)
    assert hf == {"hf": ["area:E09000013 Hammersmith and Fulham", "type:all"]}
    assert others == ["kc", "wm_labour", "wm_sexual"]  # never the inactive one
    kc, _ = suggested(scene, names, *in_kc)
    assert kc == {"kc": ["area:E09000020 Kensington and Chelsea", "type:all"]}


def test_westminster_point_goes_only_to_authorities_handling_its_types(routed):
    scene, names = routed
    labour, others = suggested(scene, names, *IN_WESTMINSTER)
    assert labour == {"wm_labour": ["area:E09000033 Westminster", "type:labour"]}
    assert "wm_sexual" in others
    both, _ = suggested(scene, names, *IN_WESTMINSTER, exploitation_types=["sexual", "labour"])
    assert both == {"wm_labour": ["area:E09000033 Westminster", "type:labour"],
                    "wm_sexual": ["area:E09000033 Westminster", "type:sexual"]}


def test_point_outside_every_area_has_no_suggestion(routed):
    scene, names = routed
    found, others = suggested(scene, names, *OUTSIDE)
    assert found == {} and others == ["hf", "kc", "wm_labour", "wm_sexual"]

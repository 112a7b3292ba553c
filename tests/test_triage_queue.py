"""The analysts' queue and report view (GET /triage/reports, GET /triage/reports/{id})."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from api.triage_report_schemas import ReportSummarySchema, dump_summary
from stopapp.accounts.models import User
from stopapp.areas.models import Area
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.media.models import Photo
from stopapp.reports.models import ReportMessage
from stopapp.review import queue
from stopapp.review.models import ReportLink, ReportNote
from tests.helpers import assert_problem
from tests.triage_helpers import auth, events, make_staff, new_report

QUEUE = "/api/v1/triage/reports"
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def analyst(app):
    return make_staff(app, "analyst", name="Ana Lyst")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


def add_reports(app, *specs: dict) -> list[str]:
    with app.app_context(), unit_of_work():
        return [str(new_report(**spec).id) for spec in specs]


def test_default_queue_is_new_and_in_review_by_priority_then_oldest(app, client, analyst):
    _, token = analyst
    urgent, old, young, in_review, closed, received = add_reports(
        app,
        {"priority": 90, "created_at": T0},
        {"priority": 40, "created_at": T0 - timedelta(days=2)},
        {"priority": 40, "created_at": T0},
        {"priority": 60, "state": "in_review", "created_at": T0},
        {"priority": 99, "state": "closed"},
        {"priority": None, "state": "received"},
    )
    assert ids(client.get(QUEUE, headers=auth(token))) == [urgent, in_review, old, young]


def test_priority_override_wins_in_the_queue_order(app, client, analyst):
    _, token = analyst
    low, high = add_reports(app, {"priority": 10, "priority_override": 95}, {"priority": 80})
    assert ids(client.get(QUEUE, headers=auth(token))) == [low, high]


def test_summary_has_the_contract_fields(app, client, analyst):
    user_id, token = analyst
    with app.app_context(), unit_of_work():
        report = new_report(description="x" * 500, tags=["sector:car_wash"],
                            area_codes=["E09000013"], assignee_id=user_id, state="in_review",
                            location_accuracy_m=25.0, occurred_at=T0)
        other = new_report()
        db.session.add_all([
            ReportLink(report_id=report.id, other_id=other.id, hours_apart=2,
                       text_similarity=0.8, distance_m=40),
            _photo(report.id, "ready"), _photo(report.id, "processing"),
            _photo(report.id, "rejected"),
        ])
        rid, reference = report.id, report.reference
    item = client.get(QUEUE, headers=auth(token)).get_json()["items"][0]
    assert item == {
        "id": str(rid), "reference": reference, "state": "in_review",
        "priority": 50, "created_at": item["created_at"], "occurred_at": "2026-10-01T12:00:00Z",
        "exploitation_types": ["labour"], "tags": ["sector:car_wash"],
        "assignee": {"id": str(user_id), "name": "Ana Lyst"}, "areas": ["E09000013"],
        "photo_count": 2, "possible_duplicate_count": 1, "excerpt": "x" * 200,
        "location": {"lat": pytest.approx(51.4927), "lon": pytest.approx(-0.224),
                     "accuracy_m": 25.0},
    }


def _photo(report_id, status: str, **fields) -> Photo:
    return Photo(report_id=report_id, idempotency_key_hash=uuid.uuid4().bytes * 2,
                 upload_digest=b"\0" * 32,
                 status=status, **fields)


FILTER_CASES = [
    ("state=closed&state=dismissed", {"state": "closed"}, {"state": "new"}),
    ("type=sexual", {"exploitation_types": ["sexual", "labour"]}, {}),
    ("tag=sector:car_wash&tag=free:van", {"tags": ["sector:car_wash", "free:van", "free:x"]},
     {"tags": ["sector:car_wash"]}),
    ("assignee=none", {}, {"state": "in_review", "assignee_id": "ME"}),
    ("assignee=me", {"state": "in_review", "assignee_id": "ME"}, {}),
    ("area=E09000020", {"area_codes": ["E09000020", "E09000033"]}, {"area_codes": ["E09000033"]}),
    ("bbox=-0.25,51.48,-0.20,51.50", {"lon": -0.2240, "lat": 51.4927},
     {"lon": -0.19, "lat": 51.4927}),
    ("created_from=2026-10-01T00:00:00Z&created_to=2026-10-02T00:00:00Z",
     {"created_at": T0}, {"created_at": T0 + timedelta(days=1)}),
    ("q=brothel%20-massage", {"description": "A brothel above the shop."},
     {"description": "A brothel behind the massage parlour."}),
    ("q=Greenford", {"place": "Greenford Road car wash"}, {"place": "Ealing"}),
]


@pytest.mark.parametrize(("query", "matching", "other"), FILTER_CASES,
                         ids=[c[0].split("=")[0] for c in FILTER_CASES])
def test_each_filter_keeps_only_matching_reports(app, client, analyst, query, matching, other):
    user_id, token = analyst
    specs = [dict(matching), dict(other)]
    for spec in specs:
        if spec.get("assignee_id") == "ME":
            spec["assignee_id"] = user_id
    match, _ = add_reports(app, *specs)
    assert ids(client.get(f"{QUEUE}?{query}", headers=auth(token))) == [match]


def test_assignee_can_be_a_user_id(app, client, analyst):
    _, token = analyst
    other_id, _ = make_staff(app)
    mine, _ = add_reports(app, {"state": "in_review", "assignee_id": other_id}, {})
    assert ids(client.get(f"{QUEUE}?assignee={other_id}", headers=auth(token))) == [mine]


def test_counts_give_reports_per_state_matching_the_other_filters(app, client, analyst):
    _, token = analyst
    add_reports(app, {"tags": ["sector:car_wash"]}, {"tags": ["sector:car_wash"]},
                {"state": "closed", "tags": ["sector:car_wash"]}, {"state": "closed"})
    body = client.get(f"{QUEUE}?tag=sector:car_wash&counts=1", headers=auth(token)).get_json()
    assert body["counts"] == {"received": 0, "new": 2, "in_review": 0, "actioned": 0,
                              "closed": 1, "dismissed": 0, "duplicate": 0}
    assert "counts" not in client.get(QUEUE, headers=auth(token)).get_json()


class StatementCounter:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)


@pytest.mark.parametrize("counts", [False, True])
def test_every_filter_combination_is_one_statement(app, counts):
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.id == make_staff(app)[0]))
        for _ in range(3):
            report = new_report(tags=["sector:car_wash"], area_codes=["A"])
            db.session.add_all([_photo(report.id, "ready"), _photo(report.id, "ready")])
            db.session.add(ReportLink(report_id=report.id, other_id=new_report().id,
                                      hours_apart=1, text_similarity=0.5))
        db.session.flush()
        combos = [
            queue.QueueQuery(),
            queue.QueueQuery(states=("closed",), sort="newest", limit=2),
            queue.QueueQuery(type="labour", tags=("sector:car_wash",), assignee="none",
                             area="A", bbox=(-1.0, 51.0, 1.0, 52.0), q="car wash",
                             created_from=T0 - timedelta(days=3650), sort="oldest"),
            queue.QueueQuery(assignee="me", created_to=datetime.now(UTC)),
        ]
        for query in combos:
            counter = StatementCounter()
            event.listen(db.engine, "before_cursor_execute", counter)
            try:
                page = queue.list_reports(actor, dataclasses.replace(query, counts=counts))
            finally:
                event.remove(db.engine, "before_cursor_execute", counter)
            assert len(counter.statements) == (2 if counts else 1), counter.statements
            if query == combos[0]:
                assert len(page.items) == 6
                assert {i["photo_count"] for i in page.items} == {0, 2}


@pytest.mark.parametrize("sort", ["priority", "oldest", "newest"])
def test_keyset_paging_neither_skips_nor_repeats_while_reports_are_added(
    app, client, analyst, sort
):
    _, token = analyst
    # Several reports share a priority and a creation time: the id settles the order.
    specs = [{"priority": p, "created_at": T0 + timedelta(minutes=m)}
             for p, m in [(90, 0), (50, 1), (50, 1), (50, 1), (50, 2), (10, 0), (10, 3), (70, 5),
                          (50, 0), (30, 1), (30, 1)]]
    original = set(add_reports(app, *specs))
    seen: list[str] = []
    url = f"{QUEUE}?sort={sort}&limit=3"
    added_priority = iter([100, 50, 0, 60, 90, 10])
    while url:
        body = client.get(url, headers=auth(token)).get_json()
        seen += [item["id"] for item in body["items"]]
        # New reports land before, among and after the ones still to come.
        add_reports(app, {"priority": next(added_priority, 40), "created_at": T0},
                    {"priority": 50, "created_at": datetime.now(UTC)})
        url = f"{QUEUE}?sort={sort}&limit=3&cursor={body['next_cursor']}" \
            if body["next_cursor"] else None
    assert len(seen) == len(set(seen))
    assert original <= set(seen)


def test_cursor_pages_follow_the_same_order_as_one_long_page(app, client, analyst):
    _, token = analyst
    add_reports(app, *({"priority": p % 4 * 20, "created_at": T0 + timedelta(seconds=p % 3)}
                       for p in range(10)))
    whole = ids(client.get(f"{QUEUE}?limit=100", headers=auth(token)))
    paged, url = [], f"{QUEUE}?limit=4"
    while url:
        body = client.get(url, headers=auth(token)).get_json()
        paged += [i["id"] for i in body["items"]]
        url = body["next_cursor"] and f"{QUEUE}?limit=4&cursor={body['next_cursor']}"
    assert paged == whole


@pytest.mark.parametrize(("query", "param"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("state=open", "state.0"), ("sort=random", "sort"), ("bbox=1,2,3", "bbox"),
    ("bbox=10,50,-10,51", "bbox"), ("bbox=0,0,1,nan", "bbox"), ("assignee=bob", "assignee"),
    ("created_from=yesterday", "created_from"), ("created_to=2026-10-01T00:00:00", "created_to"),
    ("counts=yes", "counts"), ("type=a&type=b", "type"), ("colour=red", "colour"),
    ("cursor=not-a-cursor", "cursor"), ("cursor=WyJuZXdlc3QiLDEsMl0", "cursor"),
    ("q=%20", "q"),
])
def test_bad_query_parameter_is_422_naming_it(app, client, analyst, query, param):
    _, token = analyst
    add_reports(app, {})
    assert_problem(client.get(f"{QUEUE}?{query}", headers=auth(token)), 422, param)


def test_a_cursor_of_another_sort_is_refused(app, client, analyst):
    _, token = analyst
    add_reports(app, {}, {})
    cursor = client.get(f"{QUEUE}?limit=1", headers=auth(token)).get_json()["next_cursor"]
    assert_problem(client.get(f"{QUEUE}?sort=newest&cursor={cursor}", headers=auth(token)),
                   422, "cursor")


def test_queue_needs_a_token(app, client):
    assert_problem(client.get(QUEUE), 401)


# -- one report --------------------------------------------------------------------------------


def test_detail_has_every_field_the_reporter_sent_and_the_staff_view(app, client, analyst):
    user_id, token = analyst
    with app.app_context(), unit_of_work():
        db.session.add(Area(code="E09000013", name="Hammersmith and Fulham",
                            geom="SRID=4326;MULTIPOLYGON(((0 0,1 0,1 1,0 0)))"))
        report = new_report(
            state="in_review", assignee_id=user_id, tags=["sector:car_wash"],
            area_codes=["E09000013"], priority_reasons=["ongoing"], location_accuracy_m=20.0,
            location_source="gps", occurred_at=T0, occurred_precision="day", ongoing=True,
            people={"victims": 3}, vehicles=[{"registration": "AB12 CDE"}], language="en",
            app_platform="android", app_version="4.1.0", contact_encrypted=b"secret",
            enrichment_failed=True,
        )
        twin = new_report()
        photo = _photo(report.id, "ready", width=800, height=600, captured_at=T0,
                       gps_location="SRID=4326;POINT(-0.1 51.5)")
        db.session.add_all([
            photo, _photo(report.id, "rejected", reject_reason="undecodable"),
            ReportLink(report_id=report.id, other_id=twin.id, distance_m=12.5, hours_apart=3,
                       text_similarity=0.7, photo_match=True),
            ReportMessage(report_id=report.id, sender="reporter", body="first",
                          created_at=T0),
            ReportMessage(report_id=report.id, sender="analyst", body="second",
                          author_id=user_id, created_at=T0 + timedelta(hours=1)),
            ReportNote(report_id=report.id, author_id=user_id, body="looks real"),
        ])
        actor = db.session.get(User, user_id)
        record(actor, "report.claim", report_id=report.id, detail={"to": str(user_id)})
        record(actor, "report.read", report_id=report.id)
        rid, description = report.id, report.description
        twin_id, twin_reference, photo_id = twin.id, twin.reference, photo.id
    response = client.get(f"{QUEUE}/{rid}", headers=auth(token))
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    body = response.get_json()
    assert body["description"] == description and body["place"] == "King Street"
    assert body["location"] == {"lat": pytest.approx(51.4927), "lon": pytest.approx(-0.224),
                                "accuracy_m": 20.0, "source": "gps"}
    assert body["contact"] == {"present": True}
    assert body["app"] == {"platform": "android", "version": "4.1.0"}
    assert (body["people"], body["vehicles"], body["language"]) == (
        {"victims": 3}, [{"registration": "AB12 CDE"}], "en")
    assert (body["occurred_at"], body["occurred_precision"], body["ongoing"]) == (
        "2026-10-01T12:00:00Z", "day", True)
    assert (body["state"], body["version"], body["priority"], body["priority_reasons"],
            body["priority_override"], body["enrichment_failed"]) == (
        "in_review", 1, 50, ["ongoing"], None, True)
    assert body["assignee"] == {"id": str(user_id), "name": "Ana Lyst"}
    assert body["areas"] == [{"code": "E09000013", "name": "Hammersmith and Fulham"}]
    ready = body["photos"][0]
    assert ready == {
        "id": str(photo_id), "status": "ready", "reason": None, "width": 800, "height": 600,
        "taken_at": "2026-10-01T12:00:00Z",
        "gps": {"lat": pytest.approx(51.5), "lon": pytest.approx(-0.1)},
        "display_url": f"/api/v1/triage/photos/{photo_id}/display",
        "thumb_url": f"/api/v1/triage/photos/{photo_id}/thumb",
    }
    assert body["photos"][1]["display_url"] is None
    assert body["photos"][1]["reason"] == "undecodable"
    assert [(m["from"], m["body"]) for m in body["messages"]] == [
        ("reporter", "first"), ("analyst", "second")]
    assert body["notes"][0]["body"] == "looks real"
    assert body["possible_duplicates"] == [{
        "id": str(twin_id), "reference": twin_reference, "distance_m": 12.5,
        "hours_apart": 3.0, "text_similarity": 0.7, "photo_match": True}]
    assert [(h["action"], h["actor"]["name"]) for h in body["history"]] == [
        ("report.claim", "Ana Lyst")]
    assert "secret" not in response.get_data(as_text=True)


def test_reading_a_report_is_audited(app, client, analyst):
    user_id, token = analyst
    (report_id,) = add_reports(app, {})
    client.get(f"{QUEUE}/{report_id}", headers=auth(token))
    with app.app_context():
        (read,) = events(uuid.UUID(report_id), "report.read")
        assert read.actor_id == user_id


def test_unknown_report_is_404(app, client, analyst):
    assert_problem(client.get(f"{QUEUE}/{uuid.uuid4()}", headers=auth(analyst[1])), 404)


@pytest.mark.parametrize("item", [
    {"id": uuid.uuid4(), "reference": "R-2026-000001", "state": "new", "priority": None,
     "created_at": T0, "occurred_at": None, "exploitation_types": ["labour"], "tags": [],
     "assignee": None, "areas": [], "photo_count": 0, "possible_duplicate_count": 0,
     "excerpt": "x", "location": None},
    {"id": uuid.uuid4(), "reference": "R-2026-000002", "state": "in_review", "priority": 70,
     "created_at": datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
     "occurred_at": T0, "exploitation_types": ["labour", "sexual"], "tags": ["free:a"],
     "assignee": {"id": uuid.uuid4(), "name": "Ana"}, "areas": ["E09000013"],
     "photo_count": 2, "possible_duplicate_count": 1, "excerpt": "y" * 200,
     "location": {"lat": 51.5, "lon": -0.1, "accuracy_m": None},
     # The service's summary has them for the web queue; the API's does not.
     "priority_reasons": ["minors"], "priority_override": 90},
])
def test_the_fast_summary_dump_matches_the_schema(item):
    assert dump_summary(item) == ReportSummarySchema().dump(item)

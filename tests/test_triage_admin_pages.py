"""The admin pages through Flask's test client: who may open them, CSRF, and each form changing
things through its service or, for bad input, showing a message and changing nothing."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import delete, func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from stopapp.accounts import services as accounts
from stopapp.accounts.models import User
from stopapp.accounts.totp import has_totp
from stopapp.areas import services as areas
from stopapp.areas.models import Area
from stopapp.audit.services import record
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.forwarding.models import Authority
from stopapp.review.models import TagCode
from tests.conftest import TESTDATA
from tests.triage_helpers import new_report

PASSWORD = "correct horse battery"
GEO = TESTDATA / "geo" / "london_hf_kc_westminster.geojson"
BOW_TIE = {"type": "Polygon", "coordinates": [[[-0.30, 51.40], [-0.29, 51.41], [-0.29, 51.40],
                                               [-0.30, 51.41], [-0.30, 51.40]]]}
# Tag codes the tests add; tag_codes is not among the tables truncated after committing tests.
TEST_CODE_PREFIX = "zz_admin_test_"

ADMIN_GETS = ["/triage/admin", "/triage/admin/users", "/triage/admin/users/new",
              "/triage/admin/areas", "/triage/admin/taxonomy",
              "/triage/admin/authorities", "/triage/admin/authorities/new"]
AUDIT = "/triage/admin/audit"


@pytest.fixture
def app(committed_app):
    """Committed for real, as in test_triage_pages.py (one request, one app context)."""
    yield committed_app
    with committed_app.app_context(), unit_of_work():
        db.session.execute(delete(TagCode).where(TagCode.code.startswith(TEST_CODE_PREFIX)))


def csrf_token(client, path="/triage/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*? value="([^"]+)"', page).group(1)


def sign_in(client, email, code=""):
    response = client.post("/triage/sign-in", data={
        "csrf_token": csrf_token(client), "email": email, "password": PASSWORD, "code": code,
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def staff(app, email, role):
    with app.app_context(), unit_of_work():
        return accounts.create_user(email, role, PASSWORD, name=email.split("@")[0].title()).id


@pytest.fixture
def root_id(app):
    with app.app_context(), unit_of_work():
        user, uri = accounts.add_user(None, "root@example.org", "admin", PASSWORD, name="Root")
        app.config["ROOT_TOTP"] = uri
        return user.id


@pytest.fixture
def admin(app, client, root_id):
    return sign_in(client, "root@example.org", pyotp.parse_uri(app.config["ROOT_TOTP"]).now())


def post(client, path, data=None, **kwargs):
    """POST with the session's CSRF token (any page carries it, in the sign-out form)."""
    return client.post(path, data={"csrf_token": csrf_token(client, "/triage/help"),
                                   **(data or {})}, **kwargs)


def user_row(app, email) -> User | None:
    with app.app_context():
        user = accounts.user_by_email(email)
        if user is not None:
            db.session.expunge(user)
        return user


def text(response) -> str:
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# Who may open them


@pytest.mark.parametrize("path", [*ADMIN_GETS, AUDIT])
def test_anonymous_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/triage/sign-in?next=/triage/admin")


@pytest.mark.parametrize("role", ["analyst", "supervisor"])
def test_admin_pages_are_403_below_admin(app, client, role):
    staff(app, "someone@example.org", role)
    sign_in(client, "someone@example.org")
    for path in ADMIN_GETS:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "This needs the admin role." in text(response)


def test_audit_trail_is_for_supervisors_too_not_analysts(app, client):
    staff(app, "ana@example.org", "analyst")
    staff(app, "boss@example.org", "supervisor")
    sign_in(client, "ana@example.org")
    assert client.get(AUDIT).status_code == 403
    client.post("/triage/sign-out", data={"csrf_token": csrf_token(client, "/triage/help")})
    sign_in(client, "boss@example.org")
    response = client.get(AUDIT)
    assert response.status_code == 200
    assert 'href="/triage/admin/audit"' in text(client.get("/triage/reports"))


def test_analyst_cannot_change_anything_even_with_a_valid_form(app, client, root_id):
    staff(app, "ana@example.org", "analyst")
    sign_in(client, "ana@example.org")
    attempts = {
        "/triage/admin/users/new": {"email": "x@example.org", "name": "X", "role": "admin",
                                    "password": PASSWORD},
        f"/triage/admin/users/{root_id}/role": {"role": "analyst"},
        f"/triage/admin/users/{root_id}/deactivate": {},
        f"/triage/admin/users/{root_id}/totp-reset": {},
        "/triage/admin/taxonomy/add": {"dimension": "sector", "code": TEST_CODE_PREFIX + "x",
                                       "label": "X"},
    }
    for path, data in attempts.items():
        assert post(client, path, data).status_code == 403, path
    assert user_row(app, "x@example.org") is None
    root = user_row(app, "root@example.org")
    assert root.role == "admin" and root.active and root.totp_secret_encrypted is not None


def test_forms_without_the_csrf_token_are_refused(app, admin, root_id):
    response = admin.post("/triage/admin/users/new", data={
        "email": "x@example.org", "name": "X", "role": "analyst", "password": PASSWORD,
    })
    assert response.status_code == 400 and "This form has expired" in text(response)
    assert admin.post(f"/triage/admin/users/{root_id}/revoke-tokens").status_code == 400
    assert user_row(app, "x@example.org") is None


def test_start_page_links_every_section(admin):
    body = text(admin.get("/triage/admin"))
    for path in ("/triage/admin/users", "/triage/admin/areas", "/triage/admin/taxonomy",
                 AUDIT, "/triage/admin/authorities"):
        assert f'href="{path}"' in body


def test_admin_pages_have_no_inline_script_or_style(admin):
    for path in [*ADMIN_GETS, AUDIT]:
        if path.endswith(".geojson"):
            continue
        body = text(admin.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert "<style" not in body and " style=" not in body, path


# --------------------------------------------------------------------------------------------
# Users

NEW_USER = {"email": "Nia@Example.org", "name": "Nia New", "role": "analyst",
            "password": "a long enough password"}


def test_create_user_then_see_them_listed(app, admin):
    response = post(admin, "/triage/admin/users/new", NEW_USER)
    assert response.status_code == 302
    nia = user_row(app, "nia@example.org")
    assert nia.name == "Nia New" and nia.role == "analyst" and nia.active
    page = admin.get(response.location)
    assert "Nia New&#39;s account is created" in text(page)
    assert "nia@example.org" in text(admin.get("/triage/admin/users"))


def test_short_password_is_refused_and_the_rest_is_kept(app, admin):
    response = post(admin, "/triage/admin/users/new", {**NEW_USER, "password": "too short"})
    body = text(response)
    assert response.status_code == 422
    assert '<a href="#password">The password needs at least 12 characters.</a>' in body
    assert 'value="Nia@Example.org"' in body and 'value="Nia New"' in body
    assert user_row(app, "nia@example.org") is None


def test_duplicate_email_is_refused_with_a_message(app, admin):
    staff(app, "nia@example.org", "analyst")
    response = post(admin, "/triage/admin/users/new", {**NEW_USER, "name": "Another Nia"})
    assert response.status_code == 422
    assert "A user with this email exists already." in text(response)
    assert 'value="Another Nia"' in text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User).where(
            User.email == "nia@example.org")) == 1


def test_a_new_admin_gets_a_qr_code_shown_once(app, admin):
    response = post(admin, "/triage/admin/users/new", {**NEW_USER, "role": "admin"})
    body = text(response)
    assert response.status_code == 201
    assert 'src="data:image/png;base64,' in body and "This code is shown once" in body
    with app.app_context():
        assert has_totp(accounts.get_user("nia@example.org"))


def test_change_role(app, admin):
    ana = staff(app, "ana@example.org", "analyst")
    response = post(admin, f"/triage/admin/users/{ana}/role", {"role": "supervisor"})
    assert response.status_code == 302
    assert "Ana is now a supervisor." in text(admin.get(response.location))
    assert user_row(app, "ana@example.org").role == "supervisor"


def test_promoting_to_admin_shows_their_new_authenticator(app, admin):
    ana = staff(app, "ana@example.org", "analyst")
    response = post(admin, f"/triage/admin/users/{ana}/role", {"role": "admin"})
    assert response.status_code == 200 and "Ana is now an admin." in text(response)
    assert 'class="qr"' in text(response)


def test_the_last_admin_cannot_demote_themselves(app, admin, root_id):
    response = post(admin, f"/triage/admin/users/{root_id}/role", {"role": "analyst"})
    assert response.status_code == 409
    assert "Root is the only active admin" in text(response)
    assert user_row(app, "root@example.org").role == "admin"


def test_an_admin_who_steps_down_is_taken_back_to_the_queue(app, admin, root_id):
    with app.app_context(), unit_of_work():
        accounts.add_user(None, "other@example.org", "admin", PASSWORD, name="Other")
    response = post(admin, f"/triage/admin/users/{root_id}/role", {"role": "supervisor"})
    assert response.status_code == 302 and response.location == "/triage/reports"
    assert "Root is now a supervisor." in text(admin.get(response.location))
    assert admin.get("/triage/admin/users").status_code == 403


def test_an_unknown_role_is_refused_on_the_form(app, admin):
    ana = staff(app, "ana@example.org", "analyst")
    response = post(admin, f"/triage/admin/users/{ana}/role", {"role": "owner"})
    assert response.status_code == 422 and "Not a valid choice" in text(response)
    assert user_row(app, "ana@example.org").role == "analyst"


def test_deactivate_and_reactivate(app, admin):
    ana = staff(app, "ana@example.org", "analyst")
    response = post(admin, f"/triage/admin/users/{ana}/deactivate")
    assert response.status_code == 302
    assert "deactivated" in text(admin.get(response.location))
    assert not user_row(app, "ana@example.org").active
    post(admin, f"/triage/admin/users/{ana}/reactivate")
    assert user_row(app, "ana@example.org").active


def test_an_admin_cannot_deactivate_themselves(app, admin, root_id):
    response = post(admin, f"/triage/admin/users/{root_id}/deactivate")
    assert response.status_code == 409
    assert "You cannot deactivate your own account." in text(response)
    assert user_row(app, "root@example.org").active


def test_revoke_tokens(app, admin):
    with app.app_context(), unit_of_work():
        ana = accounts.create_user("ana@example.org", "analyst", PASSWORD, name="Ana")
        _, token = accounts.issue_token(ana, "script")
        ana_id = ana.id
    response = post(admin, f"/triage/admin/users/{ana_id}/revoke-tokens")
    assert "Ana&#39;s API tokens are revoked (1)." in text(admin.get(response.location))
    with app.app_context():
        assert accounts.user_for_token(token) is None


def test_reset_totp_of_an_analyst_removes_it(app, admin):
    ana = staff(app, "ana@example.org", "analyst")
    with app.app_context(), unit_of_work():
        accounts.enrol_totp(None, accounts.get_user("ana@example.org"))
    response = post(admin, f"/triage/admin/users/{ana}/totp-reset")
    assert response.status_code == 302
    assert "authenticator app is removed" in text(admin.get(response.location))
    assert user_row(app, "ana@example.org").totp_secret_encrypted is None


def test_reset_totp_of_an_admin_hands_over_a_new_one(app, admin):
    with app.app_context(), unit_of_work():
        other, old_uri = accounts.add_user(None, "other@example.org", "admin", PASSWORD,
                                           name="Other")
        other_id = other.id
    response = post(admin, f"/triage/admin/users/{other_id}/totp-reset")
    assert response.status_code == 200 and 'class="qr"' in text(response)
    new_uri = re.search(r'<code class="secret">([^<]+)</code>', text(response)).group(1)
    assert new_uri.replace("&amp;", "&") != old_uri


# --------------------------------------------------------------------------------------------
# Areas


def upload(client, document: dict | bytes, repair=False, code="LAD13CD"):
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    data = {"csrf_token": csrf_token(client, "/triage/help"), "code_property": code,
            "name_property": "LAD13NM",
            "file": FileStorage(io.BytesIO(content), filename="areas.geojson",
                                content_type="application/geo+json")}
    if repair:
        data["repair"] = "y"
    # Encoded here, in memory: the test client would spool a body over 500 KiB to a temporary
    # file that it never closes.
    boundary, body = encode_multipart(data)
    return client.post("/triage/admin/areas", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def stored_areas(app) -> dict[str, str]:
    with app.app_context():
        return dict(db.session.execute(select(Area.code, Area.name)).all())


def with_bow_tie() -> dict:
    collection = json.loads(GEO.read_text())
    collection["features"].append({"type": "Feature", "geometry": BOW_TIE,
                                   "properties": {"LAD13CD": "BOW", "LAD13NM": "Bow tie"}})
    return collection


def test_upload_imports_the_areas_and_lists_them(app, admin):
    response = upload(admin, GEO.read_bytes())
    assert response.status_code == 302
    page = text(admin.get(response.location))
    assert "Imported 3 areas (3 new; 0 replaced) from EPSG:4326." in page
    for name in ("Hammersmith and Fulham", "Kensington and Chelsea", "Westminster"):
        assert name in page
    assert len(stored_areas(app)) == 3


def test_outlines_are_simplified_geojson_with_code_and_name(app, admin):
    upload(admin, GEO.read_bytes())
    response = admin.get("/triage/areas.geojson")
    assert response.mimetype == "application/geo+json"
    body = response.get_json()
    assert body["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in body["features"]} == set(stored_areas(app))
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in body["features"])
    original = sum(len(ring) for f in json.loads(GEO.read_text())["features"]
                   for ring in _rings(f["geometry"]))
    simplified = sum(len(ring) for f in body["features"] for ring in _rings(f["geometry"]))
    assert simplified < original


def _rings(geometry):
    if geometry["type"] == "Polygon":
        return geometry["coordinates"]
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def test_self_intersecting_polygon_is_refused_with_postgis_reason(app, admin):
    response = upload(admin, with_bow_tie())
    body = text(response)
    assert response.status_code == 422
    assert "nothing was imported" in body
    assert re.search(r"feature 4 \(BOW\): Self-intersection\[-0\.29\d* 51\.40\d*\]", body)
    assert 'value="LAD13CD"' in body
    assert stored_areas(app) == {}


def test_repair_imports_the_bow_tie_and_says_so(app, admin):
    response = upload(admin, with_bow_tie(), repair=True)
    assert "repaired with ST_MakeValid: BOW" in text(admin.get(response.location))
    assert "BOW" in stored_areas(app)


def test_boundary_files_may_be_larger_than_the_apps_json_limit(app, admin):
    collection = json.loads(GEO.read_text())
    # Real boundary files run to megabytes; the rest of the app takes at most 1 MiB.
    collection["notes"] = "x" * (2 * 1024 * 1024)
    response = upload(admin, collection)
    assert response.status_code == 302
    assert len(stored_areas(app)) == 3


def test_upload_without_a_file_or_not_json_changes_nothing(app, admin):
    response = post(admin, "/triage/admin/areas", {"code_property": "LAD13CD",
                                                   "name_property": "LAD13NM"})
    assert response.status_code == 422 and "Choose a GeoJSON file." in text(response)
    response = upload(admin, b"not json at all")
    assert response.status_code == 422 and "The file is not JSON." in text(response)
    assert stored_areas(app) == {}


# --------------------------------------------------------------------------------------------
# Taxonomy


def tag(app, code, dimension="sector") -> TagCode | None:
    with app.app_context():
        row = db.session.get(TagCode, (dimension, code))
        if row is not None:
            db.session.expunge(row)
        return row


def test_add_relabel_and_retire_a_code(app, admin):
    code = TEST_CODE_PREFIX + uuid.uuid4().hex[:6]
    response = post(admin, "/triage/admin/taxonomy/add",
                    {"dimension": "sector", "code": code, "label": "Hand car wash"})
    assert response.status_code == 302
    assert f"Added sector:{code} (Hand car wash)." in text(admin.get(response.location))
    response = post(admin, f"/triage/admin/taxonomy/sector/{code}/relabel",
                    {"label": "Hand car wash or valeting"})
    assert response.status_code == 302 and tag(app, code).label == "Hand car wash or valeting"
    response = post(admin, f"/triage/admin/taxonomy/sector/{code}/retire")
    assert "is retired" in text(admin.get(response.location))
    assert tag(app, code).retired_at is not None
    assert "Retired" in text(admin.get("/triage/admin/taxonomy"))


def test_empty_label_is_refused_and_changes_nothing(app, admin):
    code = TEST_CODE_PREFIX + uuid.uuid4().hex[:6]
    response = post(admin, "/triage/admin/taxonomy/add",
                    {"dimension": "sector", "code": code, "label": "  "})
    assert response.status_code == 422 and '<a href="#label">Enter the label.</a>' in text(response)
    assert f'value="{code}"' in text(response)
    assert tag(app, code) is None


def test_relabel_to_nothing_is_refused(app, admin):
    code = TEST_CODE_PREFIX + uuid.uuid4().hex[:6]
    post(admin, "/triage/admin/taxonomy/add", {"dimension": "sector", "code": code, "label": "A"})
    response = post(admin, f"/triage/admin/taxonomy/sector/{code}/relabel", {"label": ""})
    assert response.status_code == 422 and "Enter the label." in text(response)
    assert tag(app, code).label == "A"


def test_bad_or_existing_code_is_refused_with_the_services_message(app, admin):
    response = post(admin, "/triage/admin/taxonomy/add",
                    {"dimension": "sector", "code": "Not A Code", "label": "X"})
    assert response.status_code == 422 and "Lower-case letters" in text(response)
    code = TEST_CODE_PREFIX + uuid.uuid4().hex[:6]
    post(admin, "/triage/admin/taxonomy/add", {"dimension": "sector", "code": code, "label": "A"})
    response = post(admin, "/triage/admin/taxonomy/add",
                    {"dimension": "sector", "code": code, "label": "B"})
    assert response.status_code == 422 and "exists already" in text(response)
    assert tag(app, code).label == "A"


# --------------------------------------------------------------------------------------------
# Audit trail


def test_audit_trail_filters_by_action_and_pages_older(app, admin):
    action = f"test.paging.{uuid.uuid4().hex[:6]}"
    with app.app_context(), unit_of_work():
        for n in range(53):
            record(None, action, detail={"n": n})
    page = text(admin.get(f"{AUDIT}?action={action}"))
    assert page.count(f"<code>{action}</code>") == 50
    older = re.search(r'href="([^"]+)" rel="next">Older events', page).group(1)
    page = text(admin.get(older.replace("&amp;", "&")))
    assert page.count(f"<code>{action}</code>") == 3
    assert "Older events" not in page and ">Newest</a>" in page


def test_audit_trail_filters_by_reference_and_actor(app, admin, root_id):
    with app.app_context(), unit_of_work():
        report = new_report()
        root = db.session.get(User, root_id)
        record(root, "report.read", report_id=report.id)
        record(None, "report.read", report_id=report.id)
        reference, report_id = report.reference, report.id
    page = text(admin.get(f"{AUDIT}?report={reference}&actor_email=root@example.org"))
    assert page.count("<code>report.read</code>") == 1
    assert str(report_id)[:8] in page
    page = text(admin.get(f"{AUDIT}?report={report_id}"))
    assert page.count("<code>report.read</code>") == 2


def test_audit_trail_filters_by_dates(app, admin):
    action = f"test.dates.{uuid.uuid4().hex[:6]}"
    with app.app_context(), unit_of_work():
        record(None, action)
    today = datetime.now(UTC).date()
    page = text(admin.get(f"{AUDIT}?action={action}&created_from={today}&created_to={today}"))
    assert page.count(f"<code>{action}</code>") == 1
    page = text(admin.get(f"{AUDIT}?action={action}&created_from={today + timedelta(days=1)}"))
    assert "No events match these filters." in page


def test_unknown_reference_or_email_is_a_message_on_the_field(admin):
    response = admin.get(f"{AUDIT}?report=R-2099-999999")
    assert response.status_code == 422
    assert '<a href="#report">No report has this id or reference.</a>' in text(response)
    response = admin.get(f"{AUDIT}?actor_email=nobody@example.org")
    assert "No member of staff has this email." in text(response)


# --------------------------------------------------------------------------------------------
# Authorities


def test_add_and_edit_an_authority(app, admin):
    with app.app_context(), unit_of_work(), GEO.open("rb") as source:
        areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
    response = post(admin, "/triage/admin/authorities/new", {
        "name": "Met Police MSU", "emails": "msu@police.example\nduty@police.example",
        "area_codes": "E09000013, E09000020", "exploitation_types": "", "active": "y",
    })
    assert response.status_code == 302
    with app.app_context():
        row = db.session.scalar(select(Authority))
        assert row.emails == ["msu@police.example", "duty@police.example"]
        authority_id = row.id
    page = text(admin.get(f"/triage/admin/authorities/{authority_id}"))
    assert "msu@police.example\nduty@police.example" in page
    response = post(admin, f"/triage/admin/authorities/{authority_id}", {
        "name": "Met Police MSU", "emails": "msu@police.example", "area_codes": "E09000013",
        "exploitation_types": "labour",
    })
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(Authority, authority_id)
        assert row.area_codes == ["E09000013"] and row.active is False
        assert row.exploitation_types == ["labour"]


def test_authority_with_an_unknown_area_is_refused_and_kept(app, admin):
    response = post(admin, "/triage/admin/authorities/new", {
        "name": "Nowhere", "emails": "a@b.example", "area_codes": "NOPE",
    })
    assert response.status_code == 422
    assert "No imported area has the code NOPE." in text(response)
    assert 'value="Nowhere"' in text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Authority)) == 0


def test_authority_with_a_key_that_is_not_a_key_is_refused(app, admin):
    with app.app_context(), unit_of_work(), GEO.open("rb") as source:
        areas.import_areas(None, source, code_property="LAD13CD", name_property="LAD13NM")
    response = post(admin, "/triage/admin/authorities/new", {
        "name": "Keyed", "emails": "a@b.example", "area_codes": "E09000013",
        "pgp_public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot a key\n", "active": "y",
    })
    assert response.status_code == 422
    assert 'href="#pgp_public_key"' in text(response) and "not a key" in text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Authority)) == 0

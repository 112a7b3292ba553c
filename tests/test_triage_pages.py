"""The web queue's foundation through Flask's test client: sessions, CSRF, headers, access."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from sqlalchemy import select

from stopapp.accounts import services as accounts
from stopapp.accounts.models import ApiToken, User
from stopapp.audit.models import AuditEvent
from stopapp.config import Config
from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.media.models import Photo
from stopapp.media.services import storage
from tests.triage_helpers import new_report
from triage.security import safe_next

PASSWORD = "correct horse battery"
STAFF_PAGES = ["/triage/reports", "/triage/reports?view=map", "/triage/account", "/triage/help",
               "/triage/admin"]


def make_user(app, email="ana@example.org", role="analyst") -> None:
    with app.app_context(), unit_of_work():
        accounts.create_user(email, role, PASSWORD, name="Ana")


def csrf_token(client, path="/triage/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*? value="([^"]+)"', page).group(1)


def sign_in(client, email="ana@example.org", password=PASSWORD, code="", next_=None):
    token = csrf_token(client)
    path = "/triage/sign-in" + (f"?next={next_}" if next_ else "")
    return client.post(path, data={"csrf_token": token, "email": email, "password": password,
                                   "code": code})


@pytest.fixture
def app(committed_app):
    """Committed for real (tables truncated after): the rolled-back `app` keeps one app context
    open for the whole test, so `g` (Flask-Login's user, Flask-WTF's token) would leak from one
    request to the next, which never happens in a real server."""
    return committed_app


@pytest.fixture
def analyst(app, client):
    make_user(app)
    assert sign_in(client).status_code == 302
    return client


def test_signing_in_starts_a_session_and_goes_to_the_queue(app, client):
    make_user(app)
    response = sign_in(client)
    assert response.status_code == 302 and response.location == "/triage/reports"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development: plain HTTP on 127.0.0.1
    assert client.get("/triage/reports").status_code == 200


def test_session_cookie_is_secure_outside_development():
    assert Config(STOPAPP_ENV="production").flask_settings()["SESSION_COOKIE_SECURE"] is True
    assert Config().flask_settings()["SESSION_COOKIE_SECURE"] is False


def test_wrong_password_is_refused_with_a_message(app, client):
    make_user(app)
    response = sign_in(client, password="not the password at all")
    assert response.status_code == 422
    assert "The email, password or code is not right." in response.get_data(as_text=True)
    assert client.get("/triage/reports").status_code == 302


def test_repeated_failures_make_the_next_attempt_wait_and_say_until_when(app, client):
    make_user(app)
    for _ in range(3):
        sign_in(client, password="not the password at all")
    response = sign_in(client)  # the right password, but too soon
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    body = response.get_data(as_text=True)
    assert "Wait 1 second" in body and re.search(r"try again after \d\d:\d\d:\d\d UTC", body)


def test_admin_needs_the_code_of_their_authenticator(app, client):
    with app.app_context(), unit_of_work():
        _, uri = accounts.add_user(None, "root@example.org", "admin", PASSWORD, name="Root")
    response = sign_in(client, email="root@example.org")
    assert response.status_code == 422
    assert "Enter the 6-digit code" in response.get_data(as_text=True)
    code = pyotp.parse_uri(uri).now()
    assert sign_in(client, email="root@example.org", code=code).status_code == 302
    assert client.get("/triage/admin").status_code == 200


def test_admin_without_authenticator_is_refused(app, client):
    make_user(app, email="boss@example.org", role="admin")
    response = sign_in(client, email="boss@example.org")
    assert response.status_code == 403
    assert "Admins must use an authenticator app" in response.get_data(as_text=True)


def test_form_errors_are_summarised_with_links_to_their_fields(client, app):
    response = client.post("/triage/sign-in",
                           data={"csrf_token": csrf_token(client), "email": "", "password": ""})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<a href="#email">Enter your email address.</a>' in body
    assert 'aria-describedby="email-error"' in body


def test_post_without_csrf_token_is_refused(analyst):
    for path in ("/triage/sign-out", "/triage/account/tokens", "/triage/account/totp"):
        response = analyst.post(path, data={"label": "x"})
        assert response.status_code == 400, path
        assert "This form has expired" in response.get_data(as_text=True)
    assert analyst.get("/triage/account").status_code == 200  # still signed in


def test_sign_in_without_csrf_token_is_refused(app, client):
    make_user(app)
    response = client.post("/triage/sign-in", data={"email": "ana@example.org",
                                                    "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/triage/reports").status_code == 302


def test_signing_out_ends_the_session(analyst):
    response = analyst.post("/triage/sign-out",
                            data={"csrf_token": csrf_token(analyst, "/triage/help")})
    assert response.status_code == 302 and response.location == "/triage/sign-in"
    assert analyst.get("/triage/reports").status_code == 302


def test_sign_out_is_not_possible_with_get(analyst):
    assert analyst.get("/triage/sign-out").status_code == 405
    assert analyst.get("/triage/account").status_code == 200


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_anonymous_access_redirects_to_sign_in_with_next(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/triage/sign-in?next=/triage/")


def test_after_sign_in_the_next_page_is_opened(app, client):
    make_user(app)
    response = sign_in(client, next_="/triage/account")
    assert response.location == "/triage/account"


@pytest.mark.parametrize("target, expected", [
    ("/triage/reports?state=new", "/triage/reports?state=new"),
    ("/triage/account", "/triage/account"),
    ("https://evil.example/triage/x", "/triage/reports"),
    ("//evil.example/triage/", "/triage/reports"),
    ("/\\evil.example", "/triage/reports"),
    ("\\\\evil.example", "/triage/reports"),
    ("/api/v1/reports", "/triage/reports"),
    ("javascript:alert(1)", "/triage/reports"),
    ("/triage/\nLocation: x", "/triage/reports"),
    ("", "/triage/reports"),
    (None, "/triage/reports"),
])
def test_next_only_goes_to_pages_of_the_web_queue(app, target, expected):
    with app.test_request_context():
        assert safe_next(target) == expected


def test_security_headers_on_every_page(analyst):
    for path in [*STAFF_PAGES, "/triage/sign-in", "/triage/no-such-page"]:
        response = analyst.get(path)
        csp = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                          "img-src 'self' data: blob:", "frame-ancestors 'none'",
                          "form-action 'self'", "base-uri 'none'"):
            assert directive in csp, (path, directive)
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store", path


def test_map_tile_host_is_allowed_for_images_only(make_app):
    app = make_app(MAP_TILE_URL="https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    csp = app.test_client().get("/triage/sign-in").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://*.tiles.example.org;" in csp
    assert "script-src 'self';" in csp


def test_api_keeps_its_own_caching_and_no_page_policy(client):
    response = client.get("/api/v1/meta")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_pages_have_no_inline_script_or_style(analyst):
    for path in STAFF_PAGES:
        body = analyst.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert "<style" not in body and " style=" not in body and "onclick" not in body, path


def test_analyst_gets_403_on_admin_pages(analyst):
    response = analyst.get("/triage/admin")
    assert response.status_code == 403
    assert "This needs the admin role." in response.get_data(as_text=True)


def test_leaflet_and_markercluster_are_served_by_the_app(client):
    for path in ("/triage/vendor/leaflet/leaflet.js", "/triage/vendor/leaflet/leaflet.css",
                 "/triage/vendor/markercluster/leaflet.markercluster.js"):
        with client.get(path) as response:
            assert response.status_code == 200, path
            assert len(response.get_data()) > 1000
    assert client.get("/triage/vendor/nope/x.js").status_code == 404
    assert client.get("/triage/vendor/leaflet/../../__init__.py").status_code == 404


def test_report_text_is_escaped(app, analyst):
    with app.app_context(), unit_of_work():
        report_id = new_report(description="<script>alert(1)</script> <img src=x onerror=alert(1)>",
                               place="<b>bold</b>").id
    body = analyst.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;" in body
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body


def test_reading_a_report_page_is_audited(app, analyst):
    with app.app_context(), unit_of_work():
        report_id = new_report().id
    assert analyst.get(f"/triage/reports/{report_id}").status_code == 200
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.report_id == report_id)).all()
    assert actions == ["report.read"]


def test_unknown_report_is_a_404_page(analyst):
    response = analyst.get("/triage/reports/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_token_is_shown_once_then_listed_and_revoked(app, analyst):
    response = analyst.post("/triage/account/tokens",
                            data={"csrf_token": csrf_token(analyst, "/triage/account"),
                                  "label": "my script"})
    assert response.status_code == 201
    token = re.search(r"(stp_[A-Za-z0-9_-]+)", response.get_data(as_text=True)).group(1)
    assert analyst.get("/api/v1/triage/me",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page = analyst.get("/triage/account").get_data(as_text=True)
    assert "my script" in page and token not in page
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.label == "my script"))
    response = analyst.post(f"/triage/account/tokens/{token_id}/revoke",
                            data={"csrf_token": csrf_token(analyst, "/triage/account")})
    assert response.status_code == 302
    assert analyst.get("/api/v1/triage/me",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "my script" not in analyst.get("/triage/account").get_data(as_text=True)


def test_token_needs_a_name(analyst):
    response = analyst.post("/triage/account/tokens",
                            data={"csrf_token": csrf_token(analyst, "/triage/account"),
                                  "label": ""})
    assert response.status_code == 422
    assert '<a href="#label">Give the token a name.</a>' in response.get_data(as_text=True)


def test_someone_elses_token_cannot_be_revoked(app, analyst):
    with app.app_context(), unit_of_work():
        other = accounts.create_user("bo@example.org", "analyst", PASSWORD)
        row, _ = accounts.issue_token(other, "theirs")
        token_id = row.id
    response = analyst.post(f"/triage/account/tokens/{token_id}/revoke",
                            data={"csrf_token": csrf_token(analyst, "/triage/account")})
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is None


def _start_totp(client) -> str:
    response = client.post("/triage/account/totp",
                           data={"csrf_token": csrf_token(client, "/triage/account")})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'src="data:image/png;base64,' in body
    return re.search(r'class="secret">([A-Z2-7 ]+)<', body).group(1).replace(" ", "")


def test_enrolling_totp_takes_a_confirmed_code_then_sign_in_asks_for_it(app, analyst):
    secret = _start_totp(analyst)
    # Not active until confirmed.
    with app.app_context():
        assert db.session.scalar(select(User.totp_enabled_at)) is None
    wrong = analyst.post("/triage/account/totp/confirm",
                         data={"csrf_token": csrf_token(analyst, "/triage/account"),
                               "code": "000000" if pyotp.TOTP(secret).now() != "000000"
                               else "111111"})
    assert wrong.status_code == 422
    assert "Enter the 6-digit code your app shows now" in wrong.get_data(as_text=True)
    response = analyst.post("/triage/account/totp/confirm",
                            data={"csrf_token": csrf_token(analyst, "/triage/account"),
                                  "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert "Set up on" in analyst.get("/triage/account").get_data(as_text=True)
    analyst.post("/triage/sign-out", data={"csrf_token": csrf_token(analyst, "/triage/help")})
    assert sign_in(analyst).status_code == 422  # the code is needed now
    with app.app_context():
        user_id = accounts.get_user("ana@example.org").id
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.actor_id == user_id, AuditEvent.action.like("user.%"))).all()
    assert actions == ["user.totp"]


def test_enrolling_again_is_refused_once_confirmed(app, analyst):
    secret = _start_totp(analyst)
    analyst.post("/triage/account/totp/confirm",
                 data={"csrf_token": csrf_token(analyst, "/triage/account"),
                       "code": pyotp.TOTP(secret).now()})
    response = analyst.post("/triage/account/totp",
                            data={"csrf_token": csrf_token(analyst, "/triage/account")},
                            follow_redirects=True)
    assert "You have an authenticator app set up already" in response.get_data(as_text=True)


def test_deactivated_user_is_signed_out_at_the_next_click(app, analyst):
    with app.app_context(), unit_of_work():
        accounts.get_user("ana@example.org").active = False
    assert analyst.get("/triage/reports").status_code == 302


def test_queue_lists_reports_most_urgent_first_with_counts(app, analyst):
    with app.app_context(), unit_of_work():
        new_report(priority=20, description="low one")
        new_report(priority=90, description="urgent one")
        new_report(state="dismissed", description="gone")
    body = analyst.get("/triage/reports").get_data(as_text=True)
    assert body.index("urgent one") < body.index("low one") and "gone" not in body
    assert re.search(r"New <strong>2</strong>", body)
    assert re.search(r"Dismissed <strong>1</strong>", body)


def test_queue_filters_come_from_the_url_and_bad_ones_are_explained(app, analyst):
    with app.app_context(), unit_of_work():
        new_report(description="car wash at night")
        new_report(description="nail bar", exploitation_types=["sexual"])
    body = analyst.get("/triage/reports?type=sexual").get_data(as_text=True)
    assert "nail bar" in body and "car wash at night" not in body
    response = analyst.get("/triage/reports?created_from=yesterday")
    assert response.status_code == 422
    assert 'href="#created_from"' in response.get_data(as_text=True)


def test_queue_pages_with_a_cursor(app, analyst):
    with app.app_context(), unit_of_work():
        for n in range(51):
            new_report(priority=n, description=f"report number {n:03d}")
    first = analyst.get("/triage/reports").get_data(as_text=True)
    assert "report number 050" in first and "report number 000" not in first
    next_link = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first).group(1)
    second = analyst.get(next_link.replace("&amp;", "&")).get_data(as_text=True)
    assert "report number 000" in second and "report number 050" not in second
    assert "First page" in second


def test_queue_keeps_to_a_map_area_from_the_url(app, analyst):
    with app.app_context(), unit_of_work():
        new_report(description="in hammersmith", lon=-0.2240, lat=51.4927)
        new_report(description="in glasgow", lon=-4.2518, lat=55.8642)
    body = analyst.get("/triage/reports?bbox=-0.3,51.4,-0.1,51.6").get_data(as_text=True)
    assert "in hammersmith" in body and "in glasgow" not in body
    assert "Show reports everywhere" in body
    response = analyst.get("/triage/reports?bbox=10,0,5,1")
    assert response.status_code == 422
    assert "The map area is not valid" in response.get_data(as_text=True)


def _report_with_photos(app, testdata) -> tuple:
    """A report with a ready photo (its clean copies in the media store) and one processing."""
    with app.app_context(), unit_of_work():
        report = new_report()
        key = storage().put((testdata / "photos" / "orientation_1.jpg").read_bytes(), ".jpg")
        ready = Photo(report_id=report.id, idempotency_key_hash=uuid.uuid4().bytes * 2,
                      upload_digest=b"\0" * 32,
                      status="ready", display_key=key, thumb_key=key)
        busy = Photo(report_id=report.id, idempotency_key_hash=uuid.uuid4().bytes * 2,
                     upload_digest=b"\0" * 32,
                     status="processing")
        db.session.add_all([ready, busy])
        db.session.flush()
        return report.id, ready.id, busy.id


def test_photos_are_shown_to_staff_only_never_cached_and_audited(app, analyst, testdata):
    report_id, ready_id, busy_id = _report_with_photos(app, testdata)
    page = analyst.get(f"/triage/reports/{report_id}").get_data(as_text=True)
    assert f'src="/triage/photos/{ready_id}/thumb"' in page
    assert f'href="/triage/photos/{ready_id}/display"' in page
    with analyst.get(f"/triage/photos/{ready_id}/display") as response:
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.get_data()[:2] == b"\xff\xd8"
    assert analyst.get(f"/triage/photos/{busy_id}/display").status_code == 404
    assert analyst.get(f"/triage/photos/{ready_id}/original").status_code == 404
    with app.app_context():
        reads = db.session.scalars(select(AuditEvent.detail).where(
            AuditEvent.report_id == report_id, AuditEvent.action == "photo.read")).all()
    assert reads == [{"photo_id": str(ready_id), "variant": "display"}]
    anonymous = app.test_client().get(f"/triage/photos/{ready_id}/display")
    assert anonymous.status_code == 302


def test_forms_work_over_https_without_a_referer(app):
    # Referrer-Policy: no-referrer means browsers send no Referer: the CSRF check must not
    # need one.
    make_user(app)
    client = app.test_client()
    page = client.get("/triage/sign-in", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*? value="([^"]+)"', page).group(1)
    response = client.post("/triage/sign-in", base_url="https://localhost", data={
        "csrf_token": token, "email": "ana@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response.location == "/triage/reports"


# Pages anyone may open: signing in, and the static files and vendored libraries it needs.
PUBLIC_ENDPOINTS = {"triage.sign_in", "triage.static", "triage.vendor", "triage.home"}


def _every_staff_rule(app):
    """(method, url) for every route of the web queue but the public ones, with made-up values
    for its parameters (an unknown report or user is enough: sign-in is checked first)."""
    values = {"uuid": str(uuid.uuid4()), "int": "1"}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("triage.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        args = {}
        for name, converter in rule._converters.items():
            kind = type(converter).__name__.lower().removesuffix("converter")
            choices = getattr(converter, "items", None)
            args[name] = next(iter(choices)) if choices else values.get(kind, "x")
        url = rule.build(args, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


def test_every_staff_route_needs_sign_in(app, client):
    """Found from the URL map, so that a page added later is covered without listing it here."""
    seen = 0
    for method, url in _every_staff_rule(app):
        seen += 1
        response = client.open(url, method=method)
        if method == "GET":
            assert response.status_code == 302, url
            assert response.location.startswith("/triage/sign-in?next="), url
        else:
            # A form post without a session has no valid CSRF token either: refused either way.
            assert response.status_code in (302, 400), (method, url)
            if response.status_code == 302:
                assert response.location.startswith("/triage/sign-in"), url
    assert seen > 20

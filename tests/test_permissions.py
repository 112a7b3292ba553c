"""The permission table of the staff API, tested for every endpoint and every role.

TABLE below, plus the `ROWS` of every tests/permission_rows_*.py module (one per part of the
analysts' side), lists each endpoint under /api/v1/triage as

    (method, path_template, {"none": 401, "analyst": ..., "supervisor": ..., "admin": ...})

optionally with a 4th element: a function of the ids (below) returning extra keyword arguments
for the test client (a JSON body, an If-Match header...).

Expected outcomes: an exact status (401, 403, 409...), or ALLOWED, which means "the role
check let it through": anything but 401, 403 and 5xx. A 404 or 422 because the request is
minimal (no body, an object that is not there) is fine for ALLOWED; the point is who may act.

Path templates take placeholders from the ids created for every case: {report_id} (a `new`
report, unclaimed), {claimed_report_id} (`in_review`, claimed by another analyst, {other_id}),
{analyst_id}, {supervisor_id}, {admin_id}; any other placeholder gets a random UUID. The
reports' current versions are ids["report_version"] and ids["claimed_report_version"] (for
If-Match). A rows module may also define `setup(ids)`, called in the same unit of work, to add
its own.

`test_every_staff_endpoint_has_a_row` fails when an endpoint under /api/v1/triage has no row,
and `test_every_row_names_an_endpoint` when a row names none.
"""

from __future__ import annotations

import importlib
import re
import uuid
from pathlib import Path

import pytest

from stopapp import create_app
from stopapp.accounts import services as accounts
from stopapp.accounts.models import Role, User
from stopapp.audit import services as audit
from stopapp.db import unit_of_work
from stopapp.errors import ForbiddenError
from stopapp.extensions import db
from stopapp.reports import services as reports
from stopapp.reports.models import Report
from stopapp.review import taxonomy
from tests.conftest import VALID_REPORT, _rolled_back, test_settings

ALLOWED = "allowed"
ROLES = ("none", "analyst", "supervisor", "admin")
PREFIX = "/api/v1/triage"
PASSWORD = "correct horse battery staple"

EVERYONE = {"none": 401, "analyst": ALLOWED, "supervisor": ALLOWED, "admin": ALLOWED}
SUPERVISORS = {"none": 401, "analyst": 403, "supervisor": ALLOWED, "admin": ALLOWED}
ADMINS = {"none": 401, "analyst": 403, "supervisor": 403, "admin": ALLOWED}

TABLE = [
    # --- 6a: accounts, taxonomy, audit ---
    ("GET", "/api/v1/triage/me", EVERYONE),
    ("GET", "/api/v1/triage/users", EVERYONE),
    ("GET", "/api/v1/triage/taxonomy", EVERYONE),
    ("GET", "/api/v1/triage/audit", SUPERVISORS),
]


def _rows_modules():
    for path in sorted(Path(__file__).parent.glob("permission_rows_*.py")):
        yield importlib.import_module(f"tests.{path.stem}")


ROWS_MODULES = list(_rows_modules())


def _filled(value, ids):
    if isinstance(value, str):
        return value.format_map(ids)
    if isinstance(value, list):
        return [_filled(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, ids) for key, item in value.items()}
    return value


def _as_permission(module, row: tuple) -> tuple:
    """A module's row with its exact success codes read as ALLOWED.

    Modules may state the exact answer their own tests get with a full request (200, 201);
    here the world is shared, so only who may act is checked: 401 and 403 stay exact. A body
    the module gives in REQUESTS is sent, so that a role check is not hidden behind a 422.
    """
    method, path, expected, *rest = row
    loose = {role: ALLOWED if isinstance(code, int) and code < 300 else code
             for role, code in expected.items()}
    body = getattr(module, "REQUESTS", {}).get((method, path), {}).get("json")
    if body is not None and not rest:
        rest = [lambda ids, body=body: {"json": _filled(body, ids)}]
    return (method, path, loose, *rest)


ALL_ROWS = TABLE + [
    _as_permission(module, row) for module in ROWS_MODULES for row in module.ROWS
]


def _template(path: str) -> str:
    """A path with every placeholder (`{name}` or Werkzeug's `<conv:name>`) as `{}`."""
    full = path if path.startswith("/api/") else PREFIX + path
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", full)


def _endpoints(app) -> set[tuple[str, str]]:
    return {
        (method, _template(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX + "/") or rule.rule == PREFIX
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_staff_endpoint_has_a_row(world):
    app = world[0]
    rows = {(method, _template(path)) for method, path, *_ in ALL_ROWS}
    missing = sorted(_endpoints(app) - rows)
    assert not missing, f"staff endpoints without a row in tests/test_permissions.py: {missing}"


def test_every_row_names_an_endpoint(world):
    stale = sorted({(m, _template(p)) for m, p, *_ in ALL_ROWS} - _endpoints(world[0]))
    assert not stale, f"permission rows for endpoints that do not exist: {stale}"


def test_every_row_says_what_each_role_gets():
    for method, path, expected, *_ in ALL_ROWS:
        assert set(expected) == set(ROLES), (method, path)
        assert expected["none"] == 401, (method, path)


class _Ids(dict):
    def __missing__(self, key):
        self[key] = str(uuid.uuid4())
        return self[key]


def _make_world(app) -> tuple[_Ids, dict[str, dict]]:
    """Users of every role with tokens, and two reports; returns ids and headers by role."""
    ids, headers = _Ids(), {"none": {}}
    with app.app_context(), unit_of_work():
        for role in ("analyst", "supervisor", "admin", "other"):
            user = accounts.create_user(f"{role}@perm.test", "analyst" if role == "other"
                                        else role, PASSWORD, name=role)
            _, token = accounts.issue_token(user)
            ids[f"{role}_id"] = str(user.id)
            headers[role] = {"Authorization": f"Bearer {token}"}
        for name, key in (("report_id", 1), ("claimed_report_id", 2)):
            submission = reports.submit_report(VALID_REPORT, uuid.UUID(int=key))
            ids[name] = str(submission.report_id)
        report = db.session.get(Report, uuid.UUID(ids["report_id"]))
        report.state = "new"
        claimed = db.session.get(Report, uuid.UUID(ids["claimed_report_id"]))
        claimed.state, claimed.assignee_id = "in_review", uuid.UUID(ids["other_id"])
        db.session.flush()
        ids["report_version"], ids["claimed_report_version"] = report.version, claimed.version
        for module in ROWS_MODULES:
            if hasattr(module, "setup"):
                module.setup(ids)
    return ids, headers


@pytest.fixture(scope="module")
def world(migrated_database, tmp_path_factory):
    """One app, users and reports for the whole module (building them per case would take a
    second each); every case runs in a savepoint that is rolled back after it."""
    app = create_app(test_settings(tmp_path_factory.mktemp("permissions")))
    rolled_back = _rolled_back(app)
    next(rolled_back)
    ids, headers = _make_world(app)
    yield app, ids, headers
    rolled_back.close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def case(world):
    """The world, with whatever the case changes undone after it."""
    savepoint = db.session.get_bind().begin_nested()
    yield world
    db.session.remove()
    savepoint.rollback()


@pytest.mark.parametrize(
    "method, path, expected, extra, role",
    [
        pytest.param(row[0], row[1], row[2][role], row[3] if len(row) > 3 else None, role,
                     id=f"{row[0]} {row[1]} {role}")
        for row in ALL_ROWS
        for role in ROLES
    ],
)
def test_permission(case, method, path, expected, extra, role):
    app, ids, headers = case
    kwargs = extra(ids) if extra else {}
    if method in ("POST", "PUT", "PATCH") and "json" not in kwargs and "data" not in kwargs:
        kwargs["json"] = {}
    kwargs["headers"] = {**headers[role], **kwargs.get("headers", {})}
    url = (path if path.startswith("/api/") else PREFIX + path).format_map(ids)
    response = app.test_client().open(url, method=method, **kwargs)
    status = response.status_code
    if expected == ALLOWED:
        assert status not in (401, 403) and status < 500, (status, response.get_data(True))
    else:
        assert status == expected, (status, response.get_data(True))
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# The table's rows that have no endpoint yet (they are services for the CLI and the pages):
# "manage users, taxonomy" is for admins, "read the audit trail" for supervisors.

def _create(actor):
    accounts.add_user(actor, "new@perm.test", "analyst", PASSWORD)


SERVICES = [
    ("add_user", _create, Role.ADMIN),
    ("add_token", lambda actor, other: accounts.add_token(actor, other), Role.ADMIN),
    ("revoke_tokens", lambda actor, other: accounts.revoke_tokens(actor, other), Role.ADMIN),
    ("deactivate_user", lambda actor, other: accounts.deactivate_user(actor, other), Role.ADMIN),
    ("enrol_totp", lambda actor, other: accounts.enrol_totp(actor, other), Role.ADMIN),
    ("add_tag_code", lambda actor: taxonomy.add_tag_code(actor, "sector", "zz", "Z"), Role.ADMIN),
    ("relabel_tag_code",
     lambda actor: taxonomy.relabel_tag_code(actor, "sector", "other", "Z"), Role.ADMIN),
    ("retire_tag_code",
     lambda actor: taxonomy.retire_tag_code(actor, "sector", "other"), Role.ADMIN),
    ("list_events", lambda actor: audit.list_events(actor), Role.SUPERVISOR),
    ("list_users", lambda actor: accounts.list_users(actor), Role.ANALYST),
    ("list_taxonomy", lambda actor: taxonomy.list_taxonomy(actor), Role.ANALYST),
]


@pytest.mark.parametrize("name, call, needs", [pytest.param(*s, id=s[0]) for s in SERVICES])
def test_service_permissions(case, name, call, needs):
    ids = case[1]
    other = db.session.get(User, uuid.UUID(ids["other_id"]))
    for role in Role:
        actor = db.session.get(User, uuid.UUID(ids[f"{role.value}_id"]))
        savepoint = db.session.begin_nested()
        args = (actor, other) if call.__code__.co_argcount == 2 else (actor,)
        if role.includes(needs):
            call(*args)
        else:
            with pytest.raises(ForbiddenError):
                call(*args)
        savepoint.rollback()

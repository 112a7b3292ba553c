"""The permission rows of the report endpoints (tests/permission_rows_6c.py), each one run for
no token and every role against a report of its own."""

from __future__ import annotations

import json

import pytest

from stopapp.db import unit_of_work
from stopapp.extensions import db, settings
from stopapp.media.models import Photo
from stopapp.media.services import storage
from stopapp.security import ContactCipher
from tests.permission_rows_6c import REQUESTS, ROWS
from tests.triage_helpers import make_staff, new_report


def _fixture(app, user_id):
    with app.app_context(), unit_of_work():
        report = new_report(
            state="in_review", assignee_id=user_id,
            contact_encrypted=ContactCipher(settings().DATA_ENCRYPTION_KEY).encrypt({"name": "A"}),
        )
        photo = Photo(report_id=report.id, idempotency_key_hash=b"k" * 32,
                      upload_digest=b"\0" * 32,
                      status="ready", display_key=storage().put(b"display", ".jpg"),
                      thumb_key=storage().put(b"thumb", ".jpg"))
        db.session.add(photo)
        db.session.flush()
        return {"report_id": str(report.id), "photo_id": str(photo.id), "user_id": str(user_id)}


@pytest.mark.parametrize(("method", "template", "expected"), ROWS,
                         ids=[f"{m} {p}" for m, p, _ in ROWS])
@pytest.mark.parametrize("role", ["none", "analyst", "supervisor", "admin"])
def test_permission_row(app, client, method, template, expected, role):
    user_id, token = make_staff(app, "analyst" if role == "none" else role)
    values = _fixture(app, user_id)
    spec = REQUESTS.get((method, template), {})
    headers = {} if role == "none" else {"Authorization": f"Bearer {token}"}
    if spec.get("if_match"):
        headers["If-Match"] = '"1"'
    body = spec.get("json")
    if body is not None:
        body = json.loads(json.dumps(body).replace("{report_id}", values["report_id"])
                          .replace("{user_id}", values["user_id"]))
    url = template.format(**values) + spec.get("query", "")
    response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code == expected[role], response.get_data(as_text=True)

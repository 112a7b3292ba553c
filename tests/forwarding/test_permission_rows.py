"""Check this change's permission rows on their own until the shared table test imports them."""

from __future__ import annotations

import uuid

import pytest

from tests.forwarding.conftest import make_staff
from tests.permission_rows_8 import ROWS


@pytest.mark.parametrize(("method", "path", "expected"), ROWS)
def test_permission_row(committed_app, method, path, expected):
    # Committed, without a pushed app context: each request then gets its own `g`.
    app = committed_app
    client = app.test_client()
    for role, status in expected.items():
        headers = {} if role == "none" else make_staff(app, role).headers
        response = client.open(path.replace("{id}", str(uuid.uuid4())), method=method,
                               headers=headers, json={})
        assert response.status_code == status, (role, response.get_data(as_text=True))

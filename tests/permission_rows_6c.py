"""Permission rows for the analysts' report endpoints (STAFF_API.md's table), collected by the
table-driven permission test; tests/test_triage_permissions.py also runs them on their own.

Each row: (method, path template, expected status for no token and for each role). The request
that goes with a row is in REQUESTS: the JSON body, whether it needs If-Match, and the query.
The rows assume one fresh report per caller, `in_review` and claimed by that caller, with
contact details and one ready photo; {user_id} is the caller's own id.
"""

from __future__ import annotations

STAFF = {"none": 401, "analyst": 200, "supervisor": 200, "admin": 200}
SUPERVISOR = {"none": 401, "analyst": 403, "supervisor": 200, "admin": 200}
CREATED = {"none": 401, "analyst": 201, "supervisor": 201, "admin": 201}

R = "/api/v1/triage/reports/{report_id}"
ROWS = [
    ("GET", "/api/v1/triage/reports", STAFF),
    ("POST", "/api/v1/triage/reports/bulk", STAFF),
    ("GET", R, STAFF),
    ("PATCH", R, STAFF),
    ("POST", R + "/claim", STAFF),
    ("POST", R + "/release", STAFF),
    ("POST", R + "/assign", SUPERVISOR),
    ("POST", R + "/transitions", STAFF),
    ("POST", R + "/notes", CREATED),
    ("POST", R + "/replies", CREATED),
    ("GET", R + "/contact", SUPERVISOR),
    ("GET", "/api/v1/triage/photos/{photo_id}/display", STAFF),
    ("GET", "/api/v1/triage/photos/{photo_id}/thumb", STAFF),
]

REQUESTS = {
    ("POST", "/api/v1/triage/reports/bulk"): {
        "json": {"ids": ["{report_id}"], "action": "add_tags", "tags": ["free:checked"]}},
    ("PATCH", R): {"json": {"tags": ["free:checked"]}, "if_match": True},
    ("POST", R + "/claim"): {"if_match": True},
    ("POST", R + "/release"): {"if_match": True},
    ("POST", R + "/assign"): {"json": {"user_id": "{user_id}"}, "if_match": True},
    ("POST", R + "/transitions"): {"json": {"to": "new"}, "if_match": True},
    ("POST", R + "/notes"): {"json": {"body": "A note."}},
    ("POST", R + "/replies"): {"json": {"body": "Thank you."}},
    ("GET", R + "/contact"): {"query": "?reason=Police+request"},
}

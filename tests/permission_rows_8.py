"""Rows of the staff permission table (tests/test_permissions.py) for authorities and forwarding.

Shape: (method, path_template, {"none": ..., "analyst": ..., "supervisor": ..., "admin": ...}).
The statuses are those of a request with an empty JSON object as its body, no If-Match, and
ids that name nothing: the role check comes first, so a role that may act gets past it to the
next answer (422 for the empty body, 404 for the unknown id), and one that may not gets 403.
"""

ROWS = [
    ("GET", "/api/v1/triage/authorities",
     {"none": 401, "analyst": 200, "supervisor": 200, "admin": 200}),
    ("POST", "/api/v1/triage/authorities",
     {"none": 401, "analyst": 403, "supervisor": 403, "admin": 422}),
    ("PATCH", "/api/v1/triage/authorities/{id}",
     {"none": 401, "analyst": 403, "supervisor": 403, "admin": 404}),
    ("GET", "/api/v1/triage/reports/{id}/recipients",
     {"none": 401, "analyst": 404, "supervisor": 404, "admin": 404}),
    ("POST", "/api/v1/triage/reports/{id}/forwards",
     {"none": 401, "analyst": 422, "supervisor": 422, "admin": 422}),
    ("GET", "/api/v1/triage/forwards",
     {"none": 401, "analyst": 200, "supervisor": 200, "admin": 200}),
    ("POST", "/api/v1/triage/forwards/{id}/resend",
     {"none": 401, "analyst": 404, "supervisor": 404, "admin": 404}),
]

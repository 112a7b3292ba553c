"""Rows of the staff permission table (tests/test_permissions.py) for 6b's endpoints: areas.

Shape: (method, path template, expected status per caller: no token, analyst, supervisor,
admin), as STAFF_API.md's permission table gives them.
"""

ROWS = [
    ("GET", "/api/v1/triage/areas",
     {"none": 401, "analyst": 200, "supervisor": 200, "admin": 200}),
]

"""The OpenAPI 3.1 document: valid, true to the server's checks, and open to new namespaces."""

from __future__ import annotations

import re
import sys

import jsonschema_rs
import pytest
from flask import Blueprint, Flask
from flask_restx import Namespace, Resource, reqparse
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError
from openapi_spec_validator import validate as validate_spec
from werkzeug.datastructures import FileStorage

from api.openapi import (
    ETAG,
    IF_MATCH,
    DocumentedApi,
    Reply,
    build_document,
    operation,
    register_models,
)
from api.schemas import (
    TEXT_PATTERN,
    ContactSchema,
    Pattern,
    ProblemSchema,
    ReportCreateSchema,
    StrictInteger,
    TextRule,
    text,
)
from api.triage_report_schemas import BulkSchema, QueueQuerySchema, ReportPatchSchema

from .conftest import VALID_REPORT, submit
from .helpers import assert_problem


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


def _validator(document: dict, name: str):
    """A JSON Schema validator (jsonschema_rs: ECMA-262 patterns) for a component schema."""
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    )


def test_the_document_is_valid_openapi_3_1_at_both_addresses(client, document):
    assert document["openapi"] == "3.1.0"
    validate_spec(document)
    assert client.get("/api/v1/swagger.json").get_json() == document


def test_errors_are_documented_as_problem_json(document):
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if int(code) >= 400:
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (path, method, code)
                    expected = "ValidationProblem" if code == "422" else "Problem"
                    assert content["application/problem+json"]["schema"] == {
                        "$ref": f"#/components/schemas/{expected}"}
    problem = document["components"]["schemas"]["ValidationProblem"]
    assert {"required": ["errors"]} in problem["allOf"]


def test_headers_are_documented(document):
    paths = document["paths"]
    headers = {(p["name"], p["required"])
               for p in paths["/reports/{report_id}/photos"]["post"]["parameters"]
               if p["in"] == "header"}
    assert headers == {("X-Report-Receipt", True), ("Idempotency-Key", True)}
    assert "Retry-After" in paths["/reports"]["post"]["responses"]["429"]["headers"]
    assert "ETag" in paths["/meta"]["get"]["responses"]["200"]["headers"]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_the_links_lead_from_a_submission_to_status_messages_and_photos(document):
    links = document["paths"]["/reports"]["post"]["responses"]["201"]["links"]
    operation_ids = {op["operationId"] for ops in document["paths"].values()
                     for op in ops.values()}
    staff = {"postClaimChange", "postReportForwards", "getContact"}  # with their token
    assert {link["operationId"] for link in links.values()} == {
        "getReportStatus", "addReportMessage", "uploadReportPhoto", *staff}
    assert {link["operationId"] for link in links.values()} <= operation_ids
    for link in links.values():
        assert link["parameters"]["report_id"] == "$response.body#/id"
        receipt = link["parameters"].get("header.X-Report-Receipt")
        assert receipt == (None if link["operationId"] in staff else "$response.body#/receipt")


def test_location_or_place_is_in_the_document_and_on_the_server(client, document):
    only_description = {"description": "Seen at night."}
    assert not _validator(document, "ReportCreate").is_valid(only_description)
    assert_problem(submit(client, only_description), 422, "location")
    for body in ({**only_description, "place": "Market"},
                 {**only_description, "location": {"lat": 1.0, "lon": 2.0}}):
        assert _validator(document, "ReportCreate").is_valid(body)
        assert submit(client, body).status_code == 201


def test_the_valid_example_is_valid_by_the_document(document):
    assert _validator(document, "ReportCreate").is_valid(VALID_REPORT)


# --- Patterns: the same meaning in ECMA-262 (the document) and in Python (the server) ---

TEXT_FIELD = text(100)


def _server_accepts(field, value) -> bool:
    try:
        field.deserialize(value)
    except SchemaError:
        return False
    return True


def _old_text_errors(value: str) -> list[str]:
    """The text() checks as they were before the document needed portable patterns."""
    errors = []
    if not re.match(r"(?s).*\S", value):
        errors.append("Must not be blank.")
    if "\x00" in value:
        errors.append("Must not contain NUL characters.")
    return errors


def _new_text_errors(value: str) -> list[str]:
    try:
        TEXT_FIELD.deserialize(value)
    except SchemaError as exc:
        return sorted(exc.messages)
    return []


def test_text_pattern_agrees_with_python_on_every_character():
    """Each character alone: ECMA-262 (the document) and the server agree, as before.

    Every code point to U+3100 (past the last white space of either engine) and U+FEFF (white
    space to ECMA-262 only), then a sample of the rest: all of them take 20 s.
    """
    pattern = jsonschema_rs.validator_for({"type": "string", "pattern": TEXT_PATTERN})
    rule = TextRule()
    codes = [*range(0x3100), 0xFEFF, *range(0x3100, sys.maxunicode + 1, 97)]
    for code in codes:
        if 0xD800 <= code <= 0xDFFF:
            continue  # not characters; the JSON reader refuses them
        char = chr(code)
        try:
            rule(char)
            accepted = True
        except SchemaError:
            accepted = False
        assert pattern.is_valid(char) == accepted == (not _old_text_errors(char)), hex(code)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\ufeffa\x00Z"),
               min_size=1, max_size=12))
def test_text_rule_is_the_same_as_before_and_as_the_document(value):
    pattern = jsonschema_rs.validator_for({"type": "string", "pattern": TEXT_PATTERN})
    assert _new_text_errors(value) == sorted(_old_text_errors(value))
    assert pattern.is_valid(value) == (not _old_text_errors(value))


ANCHORED = [
    (ContactSchema().fields["phone"], [
        "+44 20 7946 0000", "(020) 7946-0000", "12", "+44 20\n", "+44 20 7946 0000\n", "١٢٣٤٥",
    ]),
    (ReportCreateSchema().fields["language"], [
        "en", "en-GB", "zh-Hant-TW", "en\n", "e", "english", "en-", "ár",
    ]),
]


@pytest.mark.parametrize("field, values", ANCHORED, ids=["phone", "language"])
def test_anchored_patterns_mean_the_same_to_both_engines(field, values):
    schema = {"type": "string", "pattern": next(v for v in field.validators
                                                 if isinstance(v, Pattern)).regex.pattern}
    ecma = jsonschema_rs.validator_for(schema)
    for value in values:
        assert ecma.is_valid(value) == _server_accepts(field, value), value
    assert not _server_accepts(field, values[0] + "\n")  # Python's $ would have let it through


@pytest.mark.parametrize("pattern", [r"(?s).*\S", r"^\d+$", r"^a\Z", r"^a$|^b$", r"\w"])
def test_patterns_that_ecma_reads_differently_are_refused(pattern):
    with pytest.raises(ValueError):
        Pattern(pattern)


def test_an_integral_number_is_an_integer_as_in_json_schema():
    field = StrictInteger(validate=validate.Range(0, 10))
    assert field.deserialize(3.0) == 3
    for value in (2.5, True, "3"):
        with pytest.raises(SchemaError):
            field.deserialize(value)


# --- New namespaces appear in the document with no extra work ---

class TriageNoteSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(1, 100))


class TriageItemSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)


class TriageQuerySchema(Schema):
    limit = fields.Integer(validate=validate.Range(1, 100))
    state = fields.String(validate=validate.OneOf(["new", "in_review"]))


def _staff_app() -> tuple[Flask, DocumentedApi]:
    """An app with a staff-like namespace documented both ways."""
    ns = Namespace("triage", path="/triage")
    models = register_models(ns, [TriageNoteSchema, TriageItemSchema, ProblemSchema])

    @ns.route("/reports/<uuid:report_id>/notes")
    class Notes(Resource):
        # The flask-restx decorators, as api/reports.py used them.
        @ns.doc(security="bearerAuth", params={
            "If-Match": {"in": "header", "type": "string", "required": True,
                         "description": "The ETag of the last read."}})
        @ns.expect(models["TriageNote"])
        @ns.response(201, "Added", models["TriageItem"])
        @ns.response(412, "Stale version")
        @ns.response(422, "Invalid", models["Problem"])
        def post(self, report_id):
            """Add a note."""

    upload = reqparse.RequestParser()
    upload.add_argument("file", location="files", type=FileStorage, required=True)
    search = reqparse.RequestParser()
    search.add_argument("q", location="args", type=str)

    @ns.route("/reports/<uuid:report_id>/attachments")
    class Attachments(Resource):
        @ns.expect(upload)
        @ns.response(202, "Accepted", headers={"Location": {"description": "Where it is"}})
        def post(self, report_id):
            """Attach a file."""

        @ns.expect(search)
        def get(self, report_id):
            """Search attachments."""

    @ns.route("/reports")
    class Queue(Resource):
        @operation("listQueue", query=TriageQuerySchema, auth=True, headers=[IF_MATCH],
                   responses={200: Reply(TriageItemSchema, "One item", headers=[ETAG])})
        def get(self):
            """The queue."""

    app = Flask(__name__)
    blueprint = Blueprint("staff", __name__, url_prefix="/api/v1")
    api = DocumentedApi(blueprint, title="t", version="1")
    api.add_namespace(ns)
    app.register_blueprint(blueprint)
    return app, api


def test_a_new_namespace_is_documented_with_either_style():
    app, api = _staff_app()
    with app.test_request_context():
        document = build_document(api)
    validate_spec(document)
    notes = document["paths"]["/triage/reports/{report_id}/notes"]["post"]
    assert notes["security"] == [{"bearerAuth": []}]
    assert {"401", "403", "404", "412", "422", "429", "503"} <= set(notes["responses"])
    assert notes["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TriageNote"}
    assert notes["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TriageItem"}
    assert notes["responses"]["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblem"}
    assert {"name": "If-Match", "in": "header", "required": True,
            "description": "The ETag of the last read.",
            "schema": {"type": "string"}} in notes["parameters"]
    assert notes["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}

    queue = document["paths"]["/triage/reports"]["get"]
    assert queue["operationId"] == "listQueue" and queue["security"] == [{"bearerAuth": []}]
    query = {p["name"]: p for p in queue["parameters"] if p["in"] == "query"}
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert query["state"]["schema"]["enum"] == ["new", "in_review"]
    assert "ETag" in queue["responses"]["200"]["headers"]
    assert "WWW-Authenticate" in queue["responses"]["401"]["headers"]
    assert document["components"]["schemas"]["TriageNote"]["properties"]["body"]["maxLength"] \
        == 100

    attachments = document["paths"]["/triage/reports/{report_id}/attachments"]
    form = attachments["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary"}
    assert form["required"] == ["file"]
    assert "Location" in attachments["post"]["responses"]["202"]["headers"]
    assert {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}} in \
        attachments["get"]["parameters"]


# --- The staff API: the document says what the server checks ---


def _schema_valid(document: dict, schema: dict, value) -> bool:
    return jsonschema_rs.validator_for({**schema, "components": document["components"]}).is_valid(
        value)


def _loads(schema: Schema, value) -> bool:
    try:
        schema.load(value)
    except SchemaError:
        return False
    return True


REPORT_ID = "3f1c353e-1e2a-4f7b-ad86-f874a05ab77c"


@pytest.mark.parametrize("body", [
    {"ids": [REPORT_ID], "action": "add_tags", "tags": ["free:x"]},
    {"ids": [REPORT_ID], "action": "remove_tags", "tags": []},
    {"ids": [REPORT_ID], "action": "assign", "user_id": REPORT_ID},
    {"ids": [REPORT_ID], "action": "transition", "to": "dismissed", "reason_code": "spam"},
    {"ids": [REPORT_ID], "action": "assign", "user_id": REPORT_ID, "tags": ["free:x"]},
    {"ids": [REPORT_ID], "action": "add_tags", "to": "new", "tags": ["free:x"]},
    {"ids": [REPORT_ID], "action": "transition"},
    {"ids": [REPORT_ID], "action": "add_tags", "tags": ["free:x"], "colour": "red"},
    {"ids": [], "action": "add_tags", "tags": ["free:x"]},
])
def test_a_bulk_body_is_valid_by_the_document_exactly_when_the_server_takes_it(document, body):
    schema = document["paths"]["/triage/reports/bulk"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert _schema_valid(document, schema, body) == _loads(BulkSchema(), body)


@pytest.mark.parametrize("body, valid", [
    ({}, False), ({"tags": []}, True), ({"priority_override": None}, True)])
def test_a_patch_must_change_something_by_the_document_and_the_server(document, body, valid):
    assert _validator(document, "ReportPatch").is_valid(body) == valid
    assert _loads(ReportPatchSchema(), body) == valid


@pytest.mark.parametrize("name, value", [
    ("bbox", "-0.25,51.48,-0.1,51.53"), ("bbox", "1e2,0,1,1"), ("bbox", "0,0,1"),
    ("bbox", " 1,0,2,1"), ("assignee", "me"), ("assignee", "none"), ("assignee", REPORT_ID),
    ("assignee", REPORT_ID.replace("-", "")), ("assignee", f"urn:uuid:{REPORT_ID}"),
    ("counts", "1"), ("counts", "false"), ("counts", "yes"), ("limit", "100"), ("limit", "101"),
    ("type", " "),
])
def test_queue_parameters_are_valid_by_the_document_as_the_server_reads_them(
    document, name, value
):
    parameters = {p["name"]: p["schema"]
                  for p in document["paths"]["/triage/reports"]["get"]["parameters"]}
    typed = int(value) if parameters[name].get("type") == "integer" else value
    in_range = name != "bbox" or value.startswith("-0.25")  # the ranges: the server only
    assert (_schema_valid(document, parameters[name], typed) and in_range) == _loads(
        QueueQuerySchema(), {name: value})


def test_a_problem_may_carry_extension_members(document):
    stale = {"type": "urn:stopapp:problem:stale-version", "title": "Precondition failed",
             "status": 412, "version": 3}
    assert _validator(document, "Problem").is_valid(stale)

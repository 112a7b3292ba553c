"""The analysts' API for authorities and forwarding, under /api/v1/triage."""

from __future__ import annotations

import uuid

from flask_restx import Namespace, Resource
from marshmallow import Schema, fields, validate

from api.auth import current_actor
from api.openapi import register_models
from api.parsing import NO_STORE, if_match, load_body, load_query
from api.schemas import (
    ProblemSchema,
    StrictBoolean,
    StrictInteger,
    TextRule,
    UtcDateTime,
)
from stopapp.accounts.models import Role
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.db import unit_of_work
from stopapp.forwarding import services
from stopapp.forwarding.models import ForwardStatus

ns = Namespace(
    "forwarding", path="/triage", description="Authorities and forwarding (bearer token)"
)

MAX_PGP_KEY_CHARS = 100_000


class AuthorityCreateSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(1, 200), TextRule()])
    emails = fields.List(fields.Email(validate=validate.Length(max=254)), required=True,
                         validate=validate.Length(1, 20))
    area_codes = fields.List(fields.String(validate=[validate.Length(1, 64), TextRule()]),
                             required=True, validate=validate.Length(1, 200))
    exploitation_types = fields.List(fields.String(validate=[validate.Length(1, 64), TextRule()]),
                                     load_default=list, validate=validate.Length(max=50),
                                     metadata={"description": "Empty: all types"})
    pgp_public_key = fields.String(allow_none=True, load_default=None,
                                   validate=[validate.Length(max=MAX_PGP_KEY_CHARS), TextRule()],
                                   metadata={"description": "ASCII-armoured PGP public key"})
    encrypted_only = StrictBoolean(load_default=False)
    active = StrictBoolean(load_default=True)


class AuthorityPatchSchema(Schema):
    name = fields.String(validate=[validate.Length(1, 200), TextRule()])
    emails = fields.List(fields.Email(validate=validate.Length(max=254)),
                         validate=validate.Length(1, 20))
    area_codes = fields.List(fields.String(validate=[validate.Length(1, 64), TextRule()]),
                             validate=validate.Length(1, 200))
    exploitation_types = fields.List(fields.String(validate=[validate.Length(1, 64), TextRule()]),
                                     validate=validate.Length(max=50))
    pgp_public_key = fields.String(allow_none=True,
                                   validate=[validate.Length(max=MAX_PGP_KEY_CHARS), TextRule()])
    encrypted_only = StrictBoolean()
    active = StrictBoolean()


class AuthoritySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    emails = fields.List(fields.String(), required=True)
    area_codes = fields.List(fields.String(), required=True)
    exploitation_types = fields.List(fields.String(), required=True)
    pgp_public_key = fields.String(allow_none=True, required=True)
    pgp_fingerprint = fields.String(allow_none=True, required=True)
    pgp_expires_at = UtcDateTime(allow_none=True, required=True)
    encrypted_only = fields.Boolean(required=True)
    active = fields.Boolean(required=True)


class RecipientSchema(Schema):
    authority_id = fields.Function(lambda r: str(r.authority.id), required=True)
    name = fields.Function(lambda r: r.authority.name, required=True)
    why = fields.List(fields.String(), required=True,
                      metadata={"description": 'e.g. "area:E09000013 Hammersmith and Fulham"'})


class RecipientsSchema(Schema):
    suggested = fields.List(fields.Nested(RecipientSchema), required=True)
    others = fields.List(fields.Nested(RecipientSchema), required=True)


class ForwardCreateSchema(Schema):
    authority_ids = fields.List(fields.UUID(), required=True,
                                validate=validate.Length(1, services.MAX_FORWARD_AUTHORITIES))
    include_contact = StrictBoolean(load_default=False)
    location_precision_m = StrictInteger(
        allow_none=True, load_default=None,
        validate=validate.OneOf(list(services.LOCATION_PRECISIONS_M)))
    note = fields.String(allow_none=True, load_default=None,
                         validate=[validate.Length(max=services.MAX_FORWARD_NOTE_CHARS),
                                   TextRule()])


class ForwardQueuedSchema(Schema):
    id = fields.UUID(required=True)
    authority_id = fields.UUID(required=True)
    status = fields.String(required=True)


class ForwardsQueuedSchema(Schema):
    forwards = fields.List(fields.Nested(ForwardQueuedSchema), required=True)


class ForwardSchema(Schema):
    id = fields.UUID(required=True)
    report_id = fields.UUID(required=True)
    authority_id = fields.UUID(required=True)
    status = fields.String(required=True,
                           metadata={"description": "queued, retrying, sent, failed"})
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True, required=True)
    message_id = fields.String(required=True)
    sent_at = UtcDateTime(allow_none=True, required=True)


class ForwardQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in ForwardStatus]))
    report_id = fields.UUID()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


models = register_models(ns, [
    AuthorityCreateSchema, AuthorityPatchSchema, AuthoritySchema, RecipientsSchema,
    ForwardCreateSchema, ForwardsQueuedSchema, ForwardSchema, ProblemSchema,
])

if_match_header = {
    "If-Match": {"in": "header", "type": "string", "required": True,
                 "description": 'The report\'s version from the last read, as "<version>".'},
}

def _problem(code: int, text: str):
    return ns.response(code, text, models["Problem"])




@ns.route("/authorities")
class Authorities(Resource):
    @ns.response(200, "Every authority, by name", [models["Authority"]])
    @_problem(401, "No or a bad token")
    def get(self):
        """The authorities (staff)."""
        with unit_of_work():
            rows = services.list_authorities(current_actor())
            body = AuthoritySchema(many=True).dump(rows)
        return body, 200, NO_STORE

    @ns.expect(models["AuthorityCreate"])
    @ns.response(201, "Registered", models["Authority"])
    @_problem(401, "No or a bad token")
    @_problem(403, "Not an admin")
    @_problem(422, "Invalid (unknown area or type, bad PGP key, name taken)")
    def post(self):
        """Register an authority (admin; audited)."""
        with unit_of_work():
            # The role first: a caller who may not do this learns nothing from validation.
            actor = require_role(current_actor(), Role.ADMIN)
            authority = services.create_authority(actor, load_body(AuthorityCreateSchema()))
            body = AuthoritySchema().dump(authority)
        return body, 201, NO_STORE


@ns.route("/authorities/<uuid:authority_id>")
class AuthorityItem(Resource):
    @ns.expect(models["AuthorityPatch"])
    @ns.response(200, "Changed", models["Authority"])
    @_problem(401, "No or a bad token")
    @_problem(403, "Not an admin")
    @_problem(404, "No such authority")
    @_problem(422, "Invalid")
    def patch(self, authority_id: uuid.UUID):
        """Change an authority (admin; audited)."""
        with unit_of_work():
            actor = require_role(current_actor(), Role.ADMIN)
            authority = services.update_authority(
                actor, authority_id, load_body(AuthorityPatchSchema())
            )
            body = AuthoritySchema().dump(authority)
        return body, 200, NO_STORE


@ns.route("/reports/<uuid:report_id>/recipients")
class Recipients(Resource):
    @ns.response(200, "Suggested and other active authorities", models["Recipients"])
    @_problem(401, "No or a bad token")
    @_problem(404, "No such report")
    def get(self, report_id: uuid.UUID):
        """Who this report could go to: areas covering its point and its exploitation types."""
        with unit_of_work():
            result = services.recipients(current_actor(), report_id)
            body = RecipientsSchema().dump(result)
        return body, 200, NO_STORE


@ns.route("/reports/<uuid:report_id>/forwards")
class ReportForwards(Resource):
    @ns.doc(params=if_match_header)
    @ns.expect(models["ForwardCreate"])
    @ns.response(202, "Queued; the report is actioned (new ETag)", models["ForwardsQueued"])
    @_problem(401, "No or a bad token")
    @_problem(404, "No such report")
    @_problem(409, "Claimed by another analyst, or a state that cannot be forwarded")
    @_problem(412, "Stale If-Match: the body names the current version")
    @_problem(422, "Unknown authority, no consent for contact, no key for an encrypted-only one")
    @_problem(428, "No If-Match")
    def post(self, report_id: uuid.UUID):
        """Forward the report by email to the chosen authorities."""
        with unit_of_work():
            actor = require_staff(current_actor())
            fields_ = load_body(ForwardCreateSchema())
            result = services.forward_report(actor, report_id, if_match(), **fields_)
            body = ForwardsQueuedSchema().dump(result)
            etag = f'"{result.version}"'
        return body, 202, {**NO_STORE, "ETag": etag}


@ns.route("/forwards")
class Forwards(Resource):
    @ns.doc(params={
        "status": {"in": "query", "type": "string",
                   "enum": [s.value for s in ForwardStatus]},
        "report_id": {"in": "query", "type": "string", "format": "uuid"},
        "limit": {"in": "query", "type": "integer", "minimum": 1, "maximum": 500,
                  "default": 100},
    })
    @ns.response(200, "Forwards, newest first", [models["Forward"]])
    @_problem(401, "No or a bad token")
    @_problem(422, "Bad query")
    def get(self):
        """Forwards and their delivery state."""
        with unit_of_work():
            actor = require_staff(current_actor())
            rows = services.list_forwards(actor, **load_query(ForwardQuerySchema()))
            body = ForwardSchema(many=True).dump(rows)
        return body, 200, NO_STORE


@ns.route("/forwards/<uuid:forward_id>/resend")
class Resend(Resource):
    @ns.response(202, "Queued again", models["Forward"])
    @_problem(401, "No or a bad token")
    @_problem(404, "No such forward")
    @_problem(409, "Not failed")
    def post(self, forward_id: uuid.UUID):
        """Send a failed forward again."""
        with unit_of_work():
            forward = services.resend_forward(current_actor(), forward_id)
            body = ForwardSchema().dump(forward)
        return body, 202, NO_STORE

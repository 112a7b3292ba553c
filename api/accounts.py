"""The analysts' API: staff directory, tag vocabulary and the audit trail (bearer token)."""

from __future__ import annotations

from flask_restx import Namespace, Resource
from marshmallow import Schema, fields, validate

from api.auth import current_actor
from api.openapi import operation, register_models
from api.parsing import NO_STORE, load_query
from api.schemas import ProblemSchema, StrictSchema, UtcDateTime
from stopapp.accounts import services as accounts
from stopapp.audit import services as audit
from stopapp.db import unit_of_work
from stopapp.review import taxonomy

ns = Namespace("staff-accounts", path="/triage",
               description="Staff, tag vocabulary and audit trail (bearer token)")

class StaffUserSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"description": "analyst, supervisor or admin"})
    email = fields.String(metadata={"description": "Only in an admin's view."})
    active = fields.Boolean(metadata={"description": "Only in an admin's view."})


class TagCodeSchema(Schema):
    code = fields.String(required=True)
    tag = fields.String(required=True, metadata={"description": "dimension:code, as on reports"})
    label = fields.String(required=True)
    crosswalk = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True,
        metadata={"description": "Partner scheme -> its codes (CTDC, HTCDS, NRM, ISIC, ILO...). "
                  "Keys starting with _ annotate (e.g. _unverified: schemes to confirm)."},
    )
    retired = fields.Function(
        lambda row: row.retired_at is not None, required=True,
        metadata={"type": "boolean",
                  "description": "Valid on the reports that carry it; cannot be added."},
    )
    retired_at = UtcDateTime(allow_none=True)


class TagDimensionSchema(Schema):
    name = fields.String(required=True, metadata={"description": "type, sector, control..."})
    section = fields.String(required=True, metadata={"description": "Of the vocabulary"})
    label = fields.String(required=True)
    codes = fields.List(fields.Nested(TagCodeSchema), required=True)


class TaxonomySchema(Schema):
    dimensions = fields.List(fields.Nested(TagDimensionSchema), required=True)


class AuditQuerySchema(StrictSchema):
    report_id = fields.UUID()
    actor_id = fields.UUID()
    action = fields.String(validate=validate.Length(1, 64),
                           metadata={"description": "e.g. report.transition"})
    from_at = UtcDateTime(data_key="from", metadata={"description": "Inclusive (RFC 3339)."})
    to_at = UtcDateTime(data_key="to", metadata={"description": "Exclusive (RFC 3339)."})
    cursor = fields.String(validate=validate.Length(max=200),
                           metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, audit.AUDIT_PAGE_MAX))


class AuditActorSchema(Schema):
    id = fields.UUID(required=True)
    email = fields.String(allow_none=True, required=True)


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    at = UtcDateTime(required=True)
    actor = fields.Nested(AuditActorSchema, allow_none=True, required=True,
                          metadata={"description": "null: the system or the command line"})
    action = fields.String(required=True)
    report_id = fields.UUID(allow_none=True, required=True)
    detail = fields.Dict(required=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


models = register_models(
    ns, [StaffUserSchema, TaxonomySchema, AuditPageSchema, ProblemSchema]
)
_audit_query = AuditQuerySchema()
_admin_view = StaffUserSchema(many=True)
_staff_view = StaffUserSchema(many=True, only=("id", "name", "role"))


@ns.route("/users")
class Users(Resource):
    @ns.response(200, "Staff, by name", [models["StaffUser"]])
    @ns.response(401, "No or a bad token", models["Problem"])
    def get(self):
        """Active staff as id, name and role (for assigning); admins also get email, active
        and inactive users."""
        with unit_of_work():
            users, admin_view = accounts.list_users(current_actor())
            body = (_admin_view if admin_view else _staff_view).dump(users)
        return body, 200, NO_STORE


@ns.route("/taxonomy")
class Taxonomy(Resource):
    @ns.response(200, "The tag dimensions and their codes", models["Taxonomy"])
    @ns.response(401, "No or a bad token", models["Problem"])
    def get(self):
        """The tag vocabulary: dimensions with codes, labels, crosswalks; retired codes marked."""
        with unit_of_work():
            body = TaxonomySchema().dump({"dimensions": taxonomy.list_taxonomy(current_actor())})
        return body, 200, NO_STORE


@ns.route("/audit")
class Audit(Resource):
    @operation(query=AuditQuerySchema)
    @ns.response(200, "Events, newest first", models["AuditPage"])
    @ns.response(401, "No or a bad token", models["Problem"])
    @ns.response(403, "Supervisors and admins only", models["Problem"])
    @ns.response(422, "A bad filter, limit or cursor", models["Problem"])
    def get(self):
        """The audit trail, filtered, newest first, paged by cursor (supervisor)."""
        with unit_of_work():
            actor = current_actor()
            query = load_query(_audit_query)
            page = audit.list_events(actor, **query)
            body = AuditPageSchema().dump(page)
        return body, 200, NO_STORE

"""The analysts' API under /api/v1/triage: the caller's own account."""

from __future__ import annotations

from flask_restx import Namespace, Resource
from marshmallow import Schema, fields

from api.auth import current_actor
from api.openapi import register_models
from api.parsing import NO_STORE
from api.schemas import ProblemSchema
from stopapp.accounts.permissions import require_staff
from stopapp.db import unit_of_work

ns = Namespace("staff", path="/triage", description="The analysts' API (bearer token)")


class MeSchema(Schema):
    id = fields.UUID(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"description": "analyst, supervisor or admin"})


models = register_models(ns, [MeSchema, ProblemSchema])


@ns.route("/me")
class Me(Resource):
    @ns.response(200, "The caller", models["Me"])
    @ns.response(401, "No or a bad token", models["Problem"])
    def get(self):
        """The caller's own account."""
        with unit_of_work():
            actor = require_staff(current_actor())
            body = MeSchema().dump(actor)
        return body, 200, NO_STORE

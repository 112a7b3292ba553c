"""The analysts' API under /api/v1/triage: the imported areas (for the queue's area filter)."""

from __future__ import annotations

from flask_restx import Namespace, Resource
from marshmallow import Schema, fields

from api.auth import current_actor
from api.openapi import register_models
from api.schemas import ProblemSchema
from stopapp.areas import services as areas
from stopapp.db import unit_of_work

ns = Namespace("areas", path="/triage", description="Areas reports are tagged with")


class AreaSchema(Schema):
    code = fields.String(required=True, metadata={"description": "e.g. E09000013"})
    name = fields.String(required=True, metadata={"description": "e.g. Hammersmith and Fulham"})


models = register_models(ns, [AreaSchema, ProblemSchema])


@ns.route("/areas")
class Areas(Resource):
    @ns.response(200, "Every imported area, by name", [models["Area"]])
    @ns.response(401, "No or a bad token", models["Problem"])
    def get(self):
        """The imported areas, as codes and names."""
        with unit_of_work():
            body = AreaSchema(many=True).dump(areas.list_areas(current_actor()))
        return body, 200

"""The OpenAPI models, generated from the marshmallow schemas (one source of truth).

flask-restx documents models but cannot read marshmallow, so apispec's converter turns each
schema (and every schema it nests) into a Swagger 2.0 definition, registered on the Api as a
schema model under the same name.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask_restx import Namespace
from marshmallow import Schema


def _name(schema: type[Schema] | Schema) -> str:
    schema_class = schema if isinstance(schema, type) else type(schema)
    return schema_class.__name__.removesuffix("Schema")


def register_models(ns: Namespace, schemas: list[type[Schema]]) -> dict[str, object]:
    """Register `schemas` (and what they nest) on `ns`; returns models by schema name."""
    spec = APISpec(
        title="STOP APP", version="1", openapi_version="2.0",
        plugins=[MarshmallowPlugin(schema_name_resolver=_name)],
    )
    for schema_class in schemas:
        if _name(schema_class) not in spec.components.schemas:
            spec.components.schema(_name(schema_class), schema=schema_class)
    definitions = spec.to_dict().get("definitions", {})
    return {name: ns.schema_model(name, definition) for name, definition in definitions.items()}

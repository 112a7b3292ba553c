"""The OpenAPI 3.1 document, generated from the flask-restx routes and the marshmallow schemas.

It is served at /api/v1/openapi.json (and, the same document, at /api/v1/swagger.json) with
Swagger UI at /api/v1/docs. Nothing is listed by hand: every Resource routed on a Namespace that
is added to the Api is walked when the document is first asked for, and every body and answer
is converted from the marshmallow schema that validates or serialises it (apispec).

Documenting an endpoint
-----------------------
Route a Resource on a Namespace added in api/__init__.py and describe each method with one
decorator (every argument is optional)::

    @ns.route("/<uuid:report_id>/claim")
    class Claim(Resource):
        @operation(
            "claimReport",                            # operationId (else method + class name)
            body=ClaimSchema,                         # JSON; or (Schema, "multipart/form-data")
            query=QueueQuerySchema,                   # one query parameter per field
            headers=[IF_MATCH],                       # request headers (Header, below)
            responses={
                200: Reply(TriageReportSchema, "Claimed", headers=[ETAG]),
                409: "Claimed by another analyst",    # >= 400: a Problem, problem+json
            },
            auth=True,                                # bearerAuth; adds 401 and 403
        )
        def post(self, report_id): ...

A response value is a `Reply`, a schema class (a default description) or a text (no body below
400, a Problem from 400 on). Every operation also documents 429 and 503 (with Retry-After), 404
when its path has parameters, and 400, 413, 415 and 422 (with `errors`) when it takes a JSON
body; give the code yourself to change the description.

flask-restx's own decorators keep working and may be mixed with `operation`: `ns.expect(model)`
and `ns.response(code, text, model)` with models from `register_models` (the marshmallow schema
behind the model is what is documented), `ns.doc(params={name: {"in": "header"|"query", ...}})`,
`ns.doc(security="bearerAuth")` and reqparse parsers.

Schemas: a pattern must be valid ECMA-262 and mean the same to Python (use
`api.schemas.Pattern`); a rule across fields that JSON Schema can say goes in the schema's
`json_schema_rules` class attribute (merged into its definition), next to the
`@validates_schema` method that enforces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import render_template
from flask_restx import Api, Namespace
from flask_restx.model import ModelBase
from flask_restx.swagger import Swagger, extract_path, parse_rule
from marshmallow import Schema

from api.problem import PROBLEM_MEDIA_TYPE, ProblemApi
from api.schemas import ProblemSchema

OPENAPI_VERSION = "3.1.0"
BEARER = "bearerAuth"
_REF_PREFIX = "#/components/schemas/"


@dataclass(frozen=True)
class Header:
    """A request or response header, documented once and named by the operations using it."""

    name: str
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string"})
    required: bool = True

    def as_parameter(self) -> dict:
        return {"name": self.name, "in": "header", "required": self.required,
                "description": self.description, "schema": self.schema}

    def as_response_header(self) -> dict:
        return {"description": self.description, "required": self.required,
                "schema": self.schema}


IDEMPOTENCY_KEY = Header(
    "Idempotency-Key", "A UUID the app made for this request; a retry repeats it.",
    {"type": "string", "format": "uuid"},
)
REPORT_RECEIPT = Header("X-Report-Receipt", "The receipt given at submission. Never in a URL.")
IF_MATCH = Header(
    "If-Match", 'The ETag of the last read ("<version>"): 428 without it, 412 when stale.'
)
IF_NONE_MATCH = Header(
    "If-None-Match", "An ETag from an earlier answer: 304 while it still holds.", required=False
)
ETAG = Header("ETag", "The version of the representation, quoted.")
RETRY_AFTER = Header(
    "Retry-After", "Seconds to wait before trying again.", {"type": "string", "pattern": "^[0-9]+$"}
)
WWW_AUTHENTICATE = Header("WWW-Authenticate", "Bearer")


@dataclass(frozen=True)
class Reply:
    """One documented answer: its body schema (None for no body), description and headers."""

    schema: type[Schema] | dict | None = None  # a dict: a JSON Schema as it is
    description: str = ""
    headers: list[Header] = field(default_factory=list)
    media_type: str | None = None
    # OpenAPI link objects by name: what a client (or schemathesis) can call next.
    links: dict = field(default_factory=dict)


def operation(
    operation_id: str | None = None,
    *,
    body: type[Schema] | tuple[type[Schema], str] | None = None,
    query: type[Schema] | None = None,
    headers: list[Header] | None = None,
    responses: dict[int, Reply | type[Schema] | str] | None = None,
    auth: bool = False,
):
    """Describe a Resource method for the OpenAPI document (see the module docstring)."""

    def decorate(func):
        func.__openapi__ = {
            "id": operation_id, "body": body, "query": query, "headers": headers or [],
            "responses": responses or {}, "auth": auth,
        }
        return func

    return decorate


# Marshmallow schemas behind the flask-restx models made by register_models, by model name.
_schemas: dict[str, type[Schema]] = {}


def schema_name(schema: type[Schema] | Schema) -> str:
    schema_class = schema if isinstance(schema, type) else type(schema)
    return schema_class.__name__.removesuffix("Schema")


def register_models(ns: Namespace, schemas: list[type[Schema]]) -> dict[str, ModelBase]:
    """flask-restx models for `schemas`, for `ns.expect` and `ns.response`; by schema name.

    The models are only names: the document is built from the marshmallow schemas behind them.
    """
    models = {}
    for schema_class in schemas:
        name = schema_name(schema_class)
        if _schemas.setdefault(name, schema_class) is not schema_class:
            raise ValueError(f"two marshmallow schemas are both named {name}")
        models[name] = ns.schema_model(name, {"$ref": _REF_PREFIX + name})
    return models


class _Plugin(MarshmallowPlugin):
    """Adds a schema's `json_schema_rules` (rules across fields) to its definition."""

    def schema_helper(self, name, definition, schema=None, **kwargs):
        json_schema = super().schema_helper(name, definition, schema=schema, **kwargs)
        if json_schema is not None:
            schema_class = schema if isinstance(schema, type) else type(schema)
            json_schema.update(getattr(schema_class, "json_schema_rules", {}))
        return json_schema


_JSON_BODY_ERRORS = {
    400: "Malformed JSON",
    413: "Body too large",
    415: "Not application/json",
    422: "Breaks a rule of the API; `errors` names the fields",
}
_COMMON_ERRORS = {
    429: "Rate limited; see Retry-After",
    503: "A backing service is down; nothing was stored; see Retry-After",
}
# Swagger 2.0 parameter keys (flask-restx's ns.doc(params=...)) that are JSON Schema keywords.
_PARAM_SCHEMA_KEYS = ("type", "format", "enum", "pattern", "minimum", "maximum", "minLength",
                      "maxLength", "items", "default", "minItems", "maxItems")
_PATH_SCHEMAS = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
}


class _Builder:
    def __init__(self, api: Api):
        self.api = api
        self.plugin = _Plugin(schema_name_resolver=schema_name)
        self.spec = APISpec(
            title=api.title, version=api.version, openapi_version=OPENAPI_VERSION,
            plugins=[self.plugin],
            info={"description": api.description or ""},
            servers=[{"url": api.base_path.rstrip("/") or "/"}],
        )
        self.restx = Swagger(api)

    def build(self) -> dict:
        self.spec.components.schema("Problem", schema=ProblemSchema)
        # 422 always names the failing fields.
        self.spec.components.schema("ValidationProblem", {
            "allOf": [{"$ref": _REF_PREFIX + "Problem"}, {"required": ["errors"]}]
        })
        self.spec.components.security_scheme(
            BEARER, {"type": "http", "scheme": "bearer",
                     "description": "A staff token: Authorization: Bearer <token>."}
        )
        for ns in self.api.namespaces:
            if ns.resources:
                self.spec.tag({"name": ns.name, "description": ns.description or ""})
            for resource, urls, route_doc, _ in ns.resources:
                for url in self.api.ns_urls(ns, urls):
                    self._add_path(ns, resource, url, route_doc)
        # flask-restx models that are not marshmallow schemas, as restx describes them.
        for name, model in self.restx._registered_models.items():
            if name not in self.spec.components.schemas:
                self.spec.components.schema(name, _rewrite_refs(model.__schema__))
        return self.spec.to_dict()

    def _add_path(self, ns, resource, url, route_doc) -> None:
        doc = self.restx.extract_resource_doc(resource, url, route_doc)
        if doc is False or doc.get("doc") is False:
            return
        path_schemas = {
            variable: _PATH_SCHEMAS.get(converter, {"type": "string"})
            for converter, _, variable in parse_rule(url) if converter
        }
        operations = {}
        for method in (m.lower() for m in resource.methods or []):
            method_doc = doc.get(method)
            if method_doc is False:
                continue
            operations[method] = self._operation(
                ns, resource, method, doc, method_doc, path_schemas
            )
        if operations:
            self.spec.path(path=extract_path(url), operations=operations)

    def _operation(self, ns, resource, method, doc, method_doc, path_schemas) -> dict:
        """One operation from flask-restx's merged docs (`doc` for the class, `method_doc`)
        and the method's `operation(...)` declaration."""
        extra = getattr(getattr(resource, method), "__openapi__", None) or {}
        params = {**doc.get("params", {}), **method_doc.get("params", {})}
        docstring = method_doc.get("docstring") or {}
        op: dict = {
            "tags": [ns.name],
            "operationId": extra.get("id") or method_doc.get("id")
            or _camel(method, resource.__name__),
        }
        if docstring.get("summary"):
            op["summary"] = docstring["summary"]
        if docstring.get("details"):
            op["description"] = docstring["details"]

        parameters = [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in path_schemas.items()
        ]
        form_fields = {}
        body_ref = None
        for name, param in params.items():
            where = param.get("in", "query")
            if where == "path":
                continue
            if where == "body":
                body_ref = param.get("schema")
            elif where == "formData":
                form_fields[name] = param
            else:
                parameters.append(_parameter(name, where, param))
        parameters += [h.as_parameter() for h in extra.get("headers", [])]
        if extra.get("query") is not None:
            parameters += self.plugin.converter.schema2parameters(
                extra["query"], location="query"
            )
        if parameters:
            op["parameters"] = _unique_parameters(parameters)

        body = self._request_body(extra.get("body"), body_ref, form_fields)
        if body:
            op["requestBody"] = body

        restx_responses = {**doc.get("responses", {}), **method_doc.get("responses", {})}
        responses = {str(code): self._restx_response(code, value)
                     for code, value in restx_responses.items()}
        for code, value in extra.get("responses", {}).items():
            responses[str(code)] = self._reply(int(code), value)
        defaults = dict(_COMMON_ERRORS)
        if path_schemas:
            defaults[404] = "No such resource"
        if body and "application/json" in body["content"]:
            defaults.update(_JSON_BODY_ERRORS)
        security = _security(method_doc.get("security", doc.get("security")))
        if extra.get("auth"):
            security = [{BEARER: []}]
        if security:
            op["security"] = security
            defaults[401] = Reply(None, "No token, or a bad one", headers=[WWW_AUTHENTICATE])
            defaults[403] = "The token's role is too low"
        for code, value in defaults.items():
            responses.setdefault(str(code), self._reply(code, value))
        op["responses"] = dict(sorted(responses.items()))
        return op

    def _schema_ref(self, schema) -> dict:
        if isinstance(schema, dict):  # a JSON Schema; its oneOf/anyOf/allOf may name classes
            return {key: [self._schema_ref(s) for s in value]
                    if key in ("oneOf", "anyOf", "allOf") else value
                    for key, value in schema.items()}
        name = schema_name(schema)
        if name not in self.spec.components.schemas:
            self.spec.components.schema(name, schema=schema)
        return {"$ref": _REF_PREFIX + name}

    def _request_body(self, declared, body_ref, form_fields) -> dict | None:
        if declared is not None:
            schema, media_type = declared if isinstance(declared, tuple) else (
                declared, "application/json")
            return {"required": True,
                    "content": {media_type: {"schema": self._schema_ref(schema)}}}
        if body_ref is not None:
            return {"required": True,
                    "content": {"application/json": {"schema": self._model_ref(body_ref)}}}
        if form_fields:
            properties = {name: _form_property(param) for name, param in form_fields.items()}
            required = [name for name, param in form_fields.items() if param.get("required")]
            schema = {"type": "object", "properties": properties}
            if required:
                schema["required"] = required
            media = "multipart/form-data" if any(
                p.get("type") == "file" for p in form_fields.values()
            ) else "application/x-www-form-urlencoded"
            return {"required": True, "content": {media: {"schema": schema}}}
        return None

    def _model_ref(self, schema: dict) -> dict:
        """A flask-restx schema ({"$ref": "#/definitions/X"} or an array of them), in 3.1."""
        schema = _rewrite_refs(schema)
        ref = schema.get("$ref", "")
        name = ref.removeprefix(_REF_PREFIX)
        if name in _schemas:
            return self._schema_ref(_schemas[name])
        if schema.get("type") == "array" and "items" in schema:
            return {**schema, "items": self._model_ref(schema["items"])}
        return schema

    def _restx_response(self, code, value) -> dict:
        """A response from ns.response(code, description, model, **kwargs)."""
        if isinstance(value, str):
            return self._reply(int(code), value)
        description, model, kwargs = (*value, {})[:3] if len(value) == 2 else value
        schema = None
        if model is not None:
            model_schema = self.restx.serialize_schema(model)
            schema = self._model_ref(model_schema)
        headers = [
            Header(name, header.get("description", ""), {"type": header.get("type", "string")},
                   required=False)
            for name, header in (kwargs.get("headers") or {}).items()
        ]
        return self._reply(int(code), Reply(schema, description, headers=headers))

    def _reply(self, code: int, value) -> dict:
        if isinstance(value, str):
            value = Reply(None, value)
        elif not isinstance(value, Reply):
            value = Reply(value)
        response: dict = {"description": value.description or HTTPStatus(code).phrase}
        schema = value.schema
        if code >= 400 and schema in (None, ProblemSchema, {"$ref": _REF_PREFIX + "Problem"}):
            schema = {"$ref": _REF_PREFIX + ("ValidationProblem" if code == 422 else "Problem")}
        if schema is not None:
            media_type = value.media_type or (
                PROBLEM_MEDIA_TYPE if code >= 400 else "application/json")
            response["content"] = {media_type: {"schema": self._schema_ref(schema)}}
        headers = list(value.headers)
        if code in (429, 503) and RETRY_AFTER not in headers:
            headers.append(RETRY_AFTER)
        if headers:
            response["headers"] = {h.name: h.as_response_header() for h in headers}
        if value.links:
            response["links"] = value.links
        return response


def _camel(method: str, name: str) -> str:
    return method + name[:1].upper() + name[1:]


def _parameter(name: str, where: str, param: dict) -> dict:
    """A Swagger 2.0 parameter (flask-restx's ns.doc(params=...)), in OpenAPI 3.1."""
    schema = {key: param[key] for key in _PARAM_SCHEMA_KEYS if key in param} or {"type": "string"}
    parameter = {"name": name, "in": where, "required": bool(param.get("required")),
                 "schema": schema}
    if param.get("description"):
        parameter["description"] = param["description"]
    return parameter


def _form_property(param: dict) -> dict:
    if param.get("type") == "file":
        prop = {"type": "string", "format": "binary"}
    else:
        prop = {key: param[key] for key in _PARAM_SCHEMA_KEYS if key in param}
    if param.get("description"):
        prop["description"] = param["description"]
    return prop


def _unique_parameters(parameters: list[dict]) -> list[dict]:
    """The last declaration of a (name, in) pair wins: header names are case-insensitive."""
    unique = {(p["name"].lower() if p["in"] == "header" else p["name"], p["in"]): p
              for p in parameters}
    return list(unique.values())


def _security(value) -> list[dict] | None:
    """flask-restx's `security` (a name, a list of names or of requirements) in 3.1."""
    if not value:
        return None
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, dict) else {item: []} for item in items]


def _rewrite_refs(value):
    """Swagger 2.0's #/definitions/ references as OpenAPI 3's #/components/schemas/."""
    if isinstance(value, dict):
        return {k: (re.sub(r"^#/definitions/", _REF_PREFIX, v) if k == "$ref" else
                    _rewrite_refs(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_refs(v) for v in value]
    return value


def build_document(api: Api) -> dict:
    """The OpenAPI 3.1 document of every operation routed on `api` (needs an app context)."""
    return _Builder(api).build()


class DocumentedApi(ProblemApi):
    """The Api whose swagger.json is the OpenAPI 3.1 document, built once on first use."""

    @property
    def __schema__(self) -> dict:
        if self._schema is None:
            with self._schema_lock:
                if self._schema is None:
                    self._schema = build_document(self)
        return self._schema


def swagger_ui(api: Api, document_url: str) -> str:
    """Swagger UI on the 3.1 document, from the assets flask-restx ships (never a CDN).

    That Swagger UI (4.19) renders OpenAPI 2.0 and 3.0 only, so the page tells it the document
    is 3.0 as it loads it; the served document is not changed.
    """
    return render_template("openapi-ui.html", title=api.title, specs_url=document_url)

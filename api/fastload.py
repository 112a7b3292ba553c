"""A fast path for marshmallow's load of a valid body, with the schema's own rules.

marshmallow's Schema.load spends most of its time on its machinery (error stores, getters,
partial and unknown handling per field), about a fifth of a report submission's CPU. For a
body that breaks no rule, the same result comes from calling each field's own `_deserialize`
and validators and the schema's own `validates_schema` methods directly. Nothing is decided
here: whatever looks the least unusual (a missing required field, a null, an unknown key, a
value a field or validator refuses, a schema feature not handled below) gives up, and the
caller runs the full Schema.load, whose answer, error messages included, is the one the
client gets. So the fast path can only ever produce what Schema.load would have produced for
the same body (tests/test_fastload.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from marshmallow import RAISE, Schema, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

__all__ = ["GIVE_UP", "fast_load"]


class _GiveUp(Exception):
    """The body needs the full Schema.load (it breaks a rule, or uses a feature not handled)."""


GIVE_UP = object()
# A field's loader: raw JSON value -> loaded value (raises to give up).
Loader = Callable[[object], object]
_compiled: WeakKeyDictionary[Schema, Callable[[dict], dict] | None] = WeakKeyDictionary()


def fast_load(schema: Schema, data: object) -> object:
    """`schema.load(data)` for a body that breaks no rule, or GIVE_UP (then call schema.load)."""
    try:
        loader = _compiled[schema]
    except KeyError:
        loader = _compiled[schema] = _compile_schema(schema)
    if loader is None or type(data) is not dict:
        return GIVE_UP
    try:
        return loader(data)
    except Exception:  # noqa: BLE001 - any doubt: the full load decides, and answers
        return GIVE_UP


def _compile_schema(schema: Schema) -> Callable[[dict], dict] | None:
    """A loader for `schema`, or None when it uses something the fast path does not handle."""
    hooks = schema._hooks  # noqa: SLF001 - marshmallow's resolved decorator hooks
    if hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
        return None
    if schema.many or schema.partial or schema.unknown != RAISE:
        return None
    validators = []
    for attr_name, pass_many, options in hooks[VALIDATES_SCHEMA]:
        if pass_many or options.get("pass_original"):
            return None
        validators.append(getattr(schema, attr_name))
    plan: list[tuple[str, bool, Loader]] = []
    for name, field in schema.load_fields.items():
        if field.data_key is not None or field.attribute is not None:
            return None
        if field.load_default is not fields.missing_:
            return None
        loader = _compile_field(field)
        if loader is None:
            return None
        plan.append((name, field.required, loader))
    known = frozenset(name for name, _required, _loader in plan)

    def load(data: dict) -> dict:
        if not known.issuperset(data):
            raise _GiveUp  # an unknown key: RAISE answers it
        result = {}
        for name, required, loader in plan:
            if name in data:
                result[name] = loader(data[name])
            elif required:
                raise _GiveUp
        for validator in validators:
            validator(result, partial=None, many=False, unknown=RAISE)
        return result

    return load


def _compile_field(field: fields.Field) -> Loader | None:
    """The loader of one field: what Field.deserialize does for a present, non-null value."""
    if field.pre_load or field.post_load:
        return None
    if isinstance(field, fields.Nested):
        if not isinstance(field.nested, Schema) and not (
            isinstance(field.nested, type) and issubclass(field.nested, Schema)
        ):
            return None
        if field.only or field.exclude or field.many or field.unknown not in (None, RAISE):
            return None
        inner = _compile_schema(field.schema)
        if inner is None:
            return None

        def load_nested(value: object) -> object:
            if value is None or type(value) is not dict:
                raise _GiveUp
            output = inner(value)
            field._validate(output)  # noqa: SLF001 - the field's own validators
            return output

        return load_nested
    if isinstance(field, fields.List):
        item = _compile_field(field.inner)
        if item is None:
            return None

        def load_list(value: object) -> object:
            if type(value) is not list:
                raise _GiveUp
            output = [item(each) for each in value]
            field._validate(output)  # noqa: SLF001
            return output

        return load_list
    if isinstance(field, fields.Mapping | fields.Tuple | fields.Pluck | fields.Method
                  | fields.Function | fields.Constant):
        return None  # not handled (other containers, or fields that read attr and data)
    deserialize = field._deserialize  # noqa: SLF001 - the field's own conversion and checks
    validators = tuple(field.validators)  # each raises ValidationError when it refuses

    def load_value(value: object) -> object:
        if value is None:
            raise _GiveUp  # null: allowed or not, the full load says
        output = deserialize(value, None, None)
        for validator in validators:
            if validator(output) is False:
                raise _GiveUp
        return output

    return load_value

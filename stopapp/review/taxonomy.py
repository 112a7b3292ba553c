"""The analysts' tag vocabulary: reading it, and the admins' changes (add, relabel, retire).

A tag on a report is `dimension:code` (or a free tag, `free:<text>`, which is not in this
table). A retired code stays valid on the reports that carry it but cannot be added again:
validate a report's new tag set with `active_tag_codes()` for the tags being added and
`known_tag_codes()` for those it already had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from stopapp.accounts.models import Role, User
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.audit.services import record
from stopapp.errors import ConflictError, NotFoundError, ValidationError
from stopapp.extensions import db
from stopapp.reports.models import utcnow
from stopapp.review.models import TagCode
from stopapp.review.taxonomy_data import DIMENSIONS

CODE_PATTERN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*(?:\.[a-z0-9]+(?:_[a-z0-9]+)*)*$")
MAX_CODE_CHARS = 100
MAX_LABEL_CHARS = 200


@dataclass
class Dimension:
    name: str
    section: str
    label: str
    codes: list[TagCode]


def known_tag_codes() -> set[str]:
    """Every `dimension:code` ever defined, retired ones included (valid on old reports)."""
    rows = db.session.execute(select(TagCode.dimension, TagCode.code))
    return {f"{dimension}:{code}" for dimension, code in rows}


def active_tag_codes() -> set[str]:
    """The `dimension:code` tags that may be added to a report now."""
    rows = db.session.execute(
        select(TagCode.dimension, TagCode.code).where(TagCode.retired_at.is_(None))
    )
    return {f"{dimension}:{code}" for dimension, code in rows}


def list_taxonomy(actor: User) -> list[Dimension]:
    """The dimensions in the vocabulary's order, each with its codes (retired ones too).

    Raises UnauthorizedError without an active member of staff.
    """
    require_staff(actor)
    by_dimension: dict[str, list[TagCode]] = {}
    for row in db.session.scalars(select(TagCode).order_by(TagCode.position, TagCode.code)):
        by_dimension.setdefault(row.dimension, []).append(row)
    order = list(DIMENSIONS) + sorted(set(by_dimension) - set(DIMENSIONS))
    return [
        Dimension(name, *DIMENSIONS.get(name, ("", name)), codes=by_dimension[name])
        for name in order
        if name in by_dimension
    ]


def _label(label: str) -> str:
    label = " ".join(label.split())
    if not label or len(label) > MAX_LABEL_CHARS:
        raise ValidationError(
            "A label needs some text.",
            errors={"label": [f"1 to {MAX_LABEL_CHARS} characters."]},
        )
    return label


def _get(dimension: str, code: str) -> TagCode:
    row = db.session.get(TagCode, (dimension, code), with_for_update=True)
    if row is None:
        raise NotFoundError(f"No tag {dimension}:{code}.")
    return row


def get_tag_code(actor: User, dimension: str, code: str) -> TagCode:
    """One code of the vocabulary, retired or not. Raises UnauthorizedError, NotFoundError."""
    require_staff(actor)
    row = db.session.get(TagCode, (dimension, code))
    if row is None:
        raise NotFoundError(f"No tag {dimension}:{code}.")
    return row


def add_tag_code(actor: User, dimension: str, code: str, label: str) -> TagCode:
    """Add a code to a dimension, after its existing codes (admin; audited).

    Raises ValidationError (unknown dimension, bad code or label), ConflictError when the code
    exists (retired codes included: a retired code keeps its meaning on old reports).
    """
    require_role(actor, Role.ADMIN)
    if dimension not in DIMENSIONS:
        raise ValidationError(
            "Unknown dimension.", errors={"dimension": [f"One of {', '.join(DIMENSIONS)}."]}
        )
    if len(code) > MAX_CODE_CHARS or not CODE_PATTERN.match(code):
        raise ValidationError("Not a valid code.", errors={"code": [
            "Lower-case letters, digits and single underscores, with '.' before a subtype."
        ]})
    label = _label(label)
    existing = db.session.get(TagCode, (dimension, code))
    if existing is not None:
        state = " (retired)" if existing.retired_at else ""
        raise ConflictError(f"The tag {existing.tag} exists already{state}.")
    position = db.session.scalar(
        select(func.coalesce(func.max(TagCode.position) + 1, 0)).where(
            TagCode.dimension == dimension
        )
    )
    row = TagCode(dimension=dimension, code=code, label=label, crosswalk={}, position=position)
    db.session.add(row)
    db.session.flush()
    record(actor, "taxonomy.change", detail={"change": "add", "tag": row.tag, "label": label})
    return row


def relabel_tag_code(actor: User, dimension: str, code: str, label: str) -> TagCode:
    """Change a code's label (admin; audited). The code, and so every tag, stays the same.

    Raises NotFoundError and ValidationError.
    """
    require_role(actor, Role.ADMIN)
    label = _label(label)
    row = _get(dimension, code)
    if row.label != label:
        record(actor, "taxonomy.change",
               detail={"change": "relabel", "tag": row.tag, "from": row.label, "to": label})
        row.label = label
    db.session.flush()
    return row


def retire_tag_code(actor: User, dimension: str, code: str) -> TagCode:
    """Retire a code (admin; audited): it stays on old reports but cannot be added again.

    Retiring a retired code changes nothing. Raises NotFoundError.
    """
    require_role(actor, Role.ADMIN)
    row = _get(dimension, code)
    if row.retired_at is None:
        row.retired_at = utcnow()
        record(actor, "taxonomy.change", detail={"change": "retire", "tag": row.tag})
    db.session.flush()
    return row

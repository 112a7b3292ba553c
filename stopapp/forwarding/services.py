"""Authorities, suggested recipients, and forwarding a report to them.

Plain functions in the caller's unit of work (flush, never commit). Each takes the acting staff
member first and checks the role itself. Delivery (the job's side) is in delivery.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

from geoalchemy2 import Geometry
from sqlalchemy import cast, func, or_, select

from stopapp.accounts.models import Role, User
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.areas.models import Area
from stopapp.audit.services import record
from stopapp.constants import ReportState
from stopapp.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from stopapp.extensions import db, redis_client, settings
from stopapp.forwarding import pgp
from stopapp.forwarding.models import Authority, Forward, ForwardStatus
from stopapp.reports.models import ExploitationType, Report, utcnow
from stopapp.review.services import (
    check_claim,
    check_version,
    claim_allows,
    lock_report,
    text_fits,
)
from stopapp.tasks import QUEUE_FORWARDING, JobSpec, enqueue_after_commit

# A report can be forwarded from these states (a later forward adds recipients).
FORWARDABLE = (ReportState.NEW.value, ReportState.IN_REVIEW.value, ReportState.ACTIONED.value)
# How coarse the location in a forward may be made, in metres (None: exact); the forwards
# table checks the same values.
LOCATION_PRECISIONS_M = (100, 1000)
MAX_FORWARD_AUTHORITIES = 50
MAX_FORWARD_NOTE_CHARS = 10_000

_AUTHORITY_FIELDS = (
    "name", "emails", "area_codes", "exploitation_types", "pgp_public_key", "encrypted_only",
    "active",
)


def forward_job(forward_id: uuid.UUID) -> JobSpec:
    """The delivery job of one forward; RQ's scheduler runs its retries after the set delays."""
    return JobSpec(
        func="workers.jobs.send_forward",
        args=(str(forward_id),),
        job_id=f"send-forward-{forward_id}",
        queue=QUEUE_FORWARDING,
        timeout_s=settings().SMTP_TIMEOUT_S * 4 + 60,
        retry_intervals_s=settings().forward_retry_intervals_s,
    )


# --------------------------------------------------------------------------------------------
# The registry


def list_authorities(actor: User) -> list[Authority]:
    """Every authority, by name. Raises UnauthorizedError without an active staff actor."""
    require_staff(actor)
    return list(db.session.scalars(select(Authority).order_by(Authority.name)))


def _check_authority(fields: dict, authority_id: uuid.UUID | None = None) -> dict:
    """Check codes against the areas and the taxonomy, the PGP key, and that no other
    authority has the name; returns the column values.

    Raises ValidationError naming each bad field.
    """
    errors: dict[str, list[str]] = {}
    values = {k: fields[k] for k in _AUTHORITY_FIELDS if k in fields}
    if "emails" in values:
        values["emails"] = list(dict.fromkeys(e.lower() for e in values["emails"]))
    for key, column, message in (
        ("area_codes", Area.code, "No imported area has the code {}."),
        ("exploitation_types", ExploitationType.code, "Unknown exploitation type: {}."),
    ):
        if key in values:
            codes = values[key] = list(dict.fromkeys(values[key]))
            known = set(db.session.scalars(select(column).where(column.in_(codes))))
            if unknown := [c for c in codes if c not in known]:
                errors[key] = [message.format(c) for c in unknown]
    if "pgp_public_key" in values:
        armoured = values["pgp_public_key"]
        values["pgp_fingerprint"] = values["pgp_expires_at"] = None
        if armoured:
            try:
                key = pgp.inspect_public_key(armoured)
            except pgp.KeyRejected as exc:
                errors["pgp_public_key"] = [str(exc)]
            else:
                values["pgp_fingerprint"] = key.fingerprint
                values["pgp_expires_at"] = key.expires_at
        else:
            values["pgp_public_key"] = None
    if "name" in values:
        clash = select(Authority.id).where(func.lower(Authority.name) == values["name"].lower())
        if authority_id is not None:
            clash = clash.where(Authority.id != authority_id)
        if db.session.scalar(clash) is not None:
            errors["name"] = ["Another authority has this name."]
    if errors:
        raise ValidationError("The authority breaks the rules.", errors=errors)
    return values


def _audit_detail(authority: Authority, changed: list[str]) -> dict:
    # Addresses and key fingerprints are not reporter data: they make the trail useful.
    return {
        "authority_id": str(authority.id), "name": authority.name, "changed": sorted(changed),
        "pgp_fingerprint": authority.pgp_fingerprint,
    }


def create_authority(actor: User, fields: dict) -> Authority:
    """Register an authority (admin). `fields` as the staff API's authority body.

    Raises ForbiddenError below admin, ValidationError for unknown area or type codes, a
    duplicate name, or a PGP key that is not a usable public key.
    """
    require_role(actor, Role.ADMIN)
    return register_authority(fields, actor)


def register_authority(fields: dict, actor: User | None = None) -> Authority:
    """Register an authority without a role check: for the command line, whose operator
    already has the server (audited with no actor). Raises ValidationError as above."""
    authority = Authority(**_check_authority(fields))
    db.session.add(authority)
    db.session.flush()
    record(actor, "authority.create", detail=_audit_detail(authority, list(fields)))
    return authority


def get_authority(authority_id: uuid.UUID) -> Authority:
    authority = db.session.get(Authority, authority_id)
    if authority is None:
        raise NotFoundError("No authority with this id.")
    return authority


def update_authority(actor: User, authority_id: uuid.UUID, fields: dict) -> Authority:
    """Change some fields of an authority (admin).

    Raises ForbiddenError below admin, NotFoundError, and ValidationError as create_authority.
    """
    require_role(actor, Role.ADMIN)
    authority = get_authority(authority_id)
    for key, value in _check_authority(fields, authority.id).items():
        setattr(authority, key, value)
    db.session.flush()
    record(actor, "authority.update", detail=_audit_detail(authority, list(fields)))
    return authority


# --------------------------------------------------------------------------------------------
# Recipients


def _report(report_id: uuid.UUID) -> Report:
    report = db.session.get(Report, report_id)
    if report is None:
        raise NotFoundError("No report with this id.")
    return report


def covering_areas(report: Report) -> dict[str, str]:
    """Codes and names of the areas whose polygons cover the report's point (PostGIS), with
    the areas the triage job recorded on it; by code."""
    point = (
        select(cast(Report.location, Geometry)).where(Report.id == report.id).scalar_subquery()
    )
    covers = func.ST_Covers(Area.geom, point)
    where = or_(covers, Area.code.in_(report.area_codes)) if report.area_codes else covers
    rows = db.session.execute(select(Area.code, Area.name).where(where).order_by(Area.code))
    return {code: name for code, name in rows}


@dataclass(frozen=True)
class Recipient:
    authority: Authority
    why: list[str]


def recipients(actor: User, report_id: uuid.UUID) -> dict[str, list[Recipient]]:
    """Active authorities, split into `suggested` (their areas cover the point and they handle
    one of the report's types; `why` says which) and `others`.

    Raises UnauthorizedError without an active staff actor, NotFoundError for an unknown report.
    """
    require_staff(actor)
    report = _report(report_id)
    areas = covering_areas(report)
    suggested, others = [], []
    active = db.session.scalars(
        select(Authority).where(Authority.active.is_(True)).order_by(Authority.name)
    )
    for authority in active:
        area_hits = [f"area:{code} {areas[code]}" for code in authority.area_codes if code in areas]
        if authority.exploitation_types:
            type_hits = [f"type:{t}" for t in report.exploitation_types
                         if t in authority.exploitation_types]
        else:
            type_hits = ["type:all"]
        if area_hits and type_hits:
            suggested.append(Recipient(authority, area_hits + type_hits))
        else:
            others.append(Recipient(authority, []))
    return {"suggested": suggested, "others": others}


# --------------------------------------------------------------------------------------------
# Forwarding


def may_forward(actor: User, state: str, assignee_id: uuid.UUID | None) -> bool:
    """Whether forward_report would let `actor` forward a report in `state` claimed by
    `assignee_id`, the version and the choices aside: for pages that offer only what can
    succeed. forward_report checks it again under the report's lock."""
    return state in FORWARDABLE and claim_allows(actor, assignee_id)


def _message_id(forward_id: uuid.UUID) -> str:
    domain = parseaddr(settings().SMTP_FROM)[1].rpartition("@")[2] or "stopapp.invalid"
    return f"<forward.{forward_id}@{domain}>"


@dataclass(frozen=True)
class Forwarded:
    forwards: list[Forward]
    version: int


def forward_report(
    actor: User,
    report_id: uuid.UUID,
    if_match: Collection[int] | None,
    *,
    authority_ids: list[uuid.UUID],
    include_contact: bool = False,
    location_precision_m: int | None = None,
    note: str | None = None,
) -> Forwarded:
    """Mark the report `actioned` and write one forward per authority; their delivery jobs are
    queued once the caller commits.

    Raises UnauthorizedError, PreconditionRequiredError / PreconditionFailedError (If-Match),
    NotFoundError, ConflictError (claimed by another analyst, or a state that cannot be
    forwarded), and ValidationError (unknown or inactive authorities, contact without the
    reporter's consent, an encrypted-only authority without a usable key). Nothing is written
    when it raises.
    """
    require_staff(actor)
    report = lock_report(report_id)
    check_version(report, if_match)
    check_claim(actor, report)
    if report.state not in FORWARDABLE:
        raise ConflictError(
            f"A report in state {report.state} cannot be forwarded.",
            extensions={"allowed_from": list(FORWARDABLE)},
        )
    ids = list(dict.fromkeys(authority_ids))
    found = {a.id: a for a in db.session.scalars(select(Authority).where(Authority.id.in_(ids)))}
    errors: dict[str, list[str]] = {}
    bad = [str(i) for i in ids if i not in found or not found[i].active]
    if bad:
        errors["authority_ids"] = [f"No active authority with the id {i}." for i in bad]
    unkeyed = [a.name for a in found.values() if a.refuses_mail_now()]
    if unkeyed:
        errors.setdefault("authority_ids", []).extend(
            f"{name} accepts only encrypted mail and has no usable PGP key." for name in unkeyed
        )
    if include_contact and report.contact_encrypted is None:
        errors["include_contact"] = ["The reporter did not consent to be contacted."]
    if location_precision_m not in (None, *LOCATION_PRECISIONS_M):
        errors["location_precision_m"] = [
            f"Exact (null) or one of {', '.join(map(str, LOCATION_PRECISIONS_M))} metres."]
    if note and not text_fits(note, MAX_FORWARD_NOTE_CHARS):
        errors["note"] = [f"At most {MAX_FORWARD_NOTE_CHARS} characters, without NUL."]
    if errors:
        raise ValidationError("This report cannot be forwarded like this.", errors=errors)

    from_state = report.state
    report.state = ReportState.ACTIONED.value
    # Always an UPDATE, so the version moves on even when the report was already actioned.
    report.updated_at = utcnow()
    forwards = []
    for authority_id in ids:
        forward_id = uuid.uuid4()
        forwards.append(Forward(
            id=forward_id, report_id=report.id, authority_id=authority_id,
            created_by_id=actor.id, include_contact=include_contact,
            location_precision_m=location_precision_m, note=note or None,
            status=ForwardStatus.QUEUED.value, message_id=_message_id(forward_id),
        ))
    db.session.add_all(forwards)
    db.session.flush()
    record(actor, "report.forward", report_id=report.id, detail={
        "forward_ids": [str(f.id) for f in forwards],
        "authority_ids": [str(i) for i in ids],
        "include_contact": include_contact,
        "location_precision_m": location_precision_m,
        "note": bool(note),
        "from": from_state, "to": report.state,
    })
    for forward in forwards:
        enqueue_after_commit(db.session(), redis_client(), forward_job(forward.id))
    return Forwarded(forwards=forwards, version=report.version)


def list_forwards(
    actor: User, *, status: str | None = None, report_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[Forward]:
    """Forwards, newest first, filtered by status and report.

    Raises UnauthorizedError without an active staff actor.
    """
    require_staff(actor)
    query = select(Forward).order_by(Forward.created_at.desc(), Forward.id).limit(limit)
    if status is not None:
        query = query.where(Forward.status == status)
    if report_id is not None:
        query = query.where(Forward.report_id == report_id)
    return list(db.session.scalars(query))


def resend_forward(actor: User, forward_id: uuid.UUID) -> Forward:
    """Queue a failed forward again, with a fresh set of attempts and the same Message-ID.

    Raises UnauthorizedError, NotFoundError, ConflictError unless it failed (or when another
    analyst has claimed the report).
    """
    require_staff(actor)
    forward = db.session.get(Forward, forward_id, with_for_update=True)
    if forward is None:
        raise NotFoundError("No forward with this id.")
    check_claim(actor, _report(forward.report_id))
    if forward.status != ForwardStatus.FAILED.value:
        raise ConflictError(
            f"Only a failed forward can be resent; this one is {forward.status}.",
            extensions={"allowed_from": [ForwardStatus.FAILED.value]},
        )
    forward.status = ForwardStatus.QUEUED.value
    forward.attempts = 0
    db.session.flush()
    record(actor, "report.forward", report_id=forward.report_id, detail={
        "forward_ids": [str(forward.id)], "authority_ids": [str(forward.authority_id)],
        "resend": True,
    })
    enqueue_after_commit(db.session(), redis_client(), forward_job(forward.id))
    return forward


def forwards_awaiting_delivery(older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Forwards still queued or retrying, untouched for `older_than`: their job may be lost."""
    cutoff = utcnow() - older_than
    return list(db.session.scalars(
        select(Forward.id)
        .where(
            Forward.status.in_([ForwardStatus.QUEUED.value, ForwardStatus.RETRYING.value]),
            Forward.updated_at < cutoff,
        )
        .order_by(Forward.updated_at)
        .limit(limit)
    ))

"""Changing a report as an analyst: tags, priority override, claims, state moves, notes, replies,
bulk actions; and the two audited reads of what is most sensitive (contact details, photos).

Concurrency: every change locks the report's row (SELECT ... FOR UPDATE) before it compares the
caller's If-Match version, so of two clients racing with the same version exactly one changes the
report and the other gets 412; the ORM's version column adds one on every UPDATE. Each change is
audited in the same unit of work, with what changed and never the report's text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select

from stopapp.accounts.models import Role, User
from stopapp.accounts.permissions import require_role, require_staff
from stopapp.audit.services import record
from stopapp.constants import MessageSender, PhotoStatus, ReportState
from stopapp.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    PreconditionRequiredError,
    ProblemError,
    ValidationError,
)
from stopapp.extensions import db, settings
from stopapp.media.models import Photo
from stopapp.media.services import storage
from stopapp.reports.models import Report, ReportMessage
from stopapp.review.models import ReportNote, TagCode
from stopapp.security import ContactCipher

S = ReportState
# The contract's table of moves (STAFF_API.md). `received` moves only by the triage job.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset(),
    S.NEW: frozenset({S.IN_REVIEW, S.DISMISSED, S.DUPLICATE}),
    S.IN_REVIEW: frozenset({S.NEW, S.ACTIONED, S.DISMISSED, S.DUPLICATE}),
    S.ACTIONED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset({S.IN_REVIEW}),
    S.DISMISSED: frozenset({S.IN_REVIEW}),
    S.DUPLICATE: frozenset({S.IN_REVIEW}),
}
# Moving out of these is a reopen, which only a supervisor may do.
REOPENED_FROM = frozenset({S.CLOSED, S.DISMISSED, S.DUPLICATE})
DISMISS_REASON_CODES = ("spam", "not_trafficking", "insufficient", "out_of_scope", "other")
# A claim can be taken (or handed out) while the report is still being worked on.
CLAIMABLE = frozenset({S.NEW, S.IN_REVIEW, S.ACTIONED})

FREE_PREFIX = "free:"
MAX_FREE_TAG_CHARS = 100
MAX_TAGS = 50
_TAG = re.compile(r"([a-z_]+):([a-z0-9_.]+)")
MAX_BULK_IDS = 200
# Staff's own text, as the contract bounds it (the API's schemas and the pages' forms use these).
MAX_CONTACT_REASON_CHARS = 500
MAX_NOTE_CHARS = 10_000
MAX_REPLY_CHARS = 5_000
MAX_REASON_CHARS = 1_000


def text_fits(value: str, max_chars: int) -> bool:
    """At most `max_chars` characters (counted before stripping, as the document's maxLength
    counts) and no NUL, which PostgreSQL cannot store."""
    return len(value) <= max_chars and "\x00" not in value


def check_text(field: str, value: str | None, max_chars: int, message: str) -> str:
    """`value` if it has some text that is not white space and text_fits; else
    ValidationError with `message`, naming `field`."""
    value = value or ""
    if not value.strip() or not text_fits(value, max_chars):
        raise ValidationError(message, errors={
            field: [f"Required; 1 to {max_chars} characters, without NUL."]})
    return value


def etag(version: int) -> str:
    """The entity tag of a report version, as sent in ETag and expected in If-Match."""
    return f'"{version}"'


# -- loading, locking, checking ----------------------------------------------------------------


def lock_report(report_id: uuid.UUID) -> Report:
    """The report, locked for the rest of the transaction. Raises NotFoundError."""
    report = db.session.get(Report, report_id, with_for_update=True, populate_existing=True)
    if report is None:
        raise NotFoundError("No report with this id.")
    return report


def check_version(report: Report, if_match: Collection[int] | None) -> None:
    """Raise PreconditionRequiredError without If-Match and PreconditionFailedError (naming the
    current version) when it does not name the current version."""
    if if_match is None:
        raise PreconditionRequiredError(
            f"Send If-Match: {etag(report.version)} from your last read of this report."
        )
    if report.version not in if_match:
        raise PreconditionFailedError(
            "The report changed since you read it; nothing was changed. Read it again.",
            extensions={"version": report.version},
        )


def is_supervisor(actor: User) -> bool:
    return actor.role_enum.includes(Role.SUPERVISOR)


def claim_allows(actor: User, assignee_id: uuid.UUID | None) -> bool:
    """Whether a report claimed by `assignee_id` (None: nobody) is open to `actor`: it is
    unclaimed, theirs, or they are a supervisor."""
    return assignee_id in (None, actor.id) or is_supervisor(actor)


def check_claim(actor: User, report: Report) -> None:
    """An analyst may not act on a report someone else has claimed; supervisors may.

    Raises ConflictError.
    """
    if not claim_allows(actor, report.assignee_id):
        raise ConflictError(
            "Another analyst has claimed this report; ask them or a supervisor.",
            extensions={"assignee_id": str(report.assignee_id)},
        )


def _changing(actor: User, report_id: uuid.UUID, if_match: Collection[int] | None) -> Report:
    require_staff(actor)
    report = lock_report(report_id)
    check_version(report, if_match)
    check_claim(actor, report)
    return report


def _saved(report: Report) -> Report:
    # Flushing sends the UPDATE, which bumps `version` (SQLAlchemy's version_id_col).
    db.session.flush()
    return report


# -- tags and priority ---------------------------------------------------------------------------


def _valid_tags(tags: list[str], current: list[str]) -> list[str]:
    """`tags` without repeats, in the caller's order, each a live taxonomy code, a retired one
    already on the report, or a free tag. Raises ValidationError naming the bad ones."""
    wanted = list(dict.fromkeys(tags))
    if len(wanted) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", errors={"tags": ["Too many."]})
    problems, coded = [], []
    for tag in wanted:
        if tag.startswith(FREE_PREFIX):
            text = tag[len(FREE_PREFIX):]
            if not text.strip() or text != text.strip() or len(text) > MAX_FREE_TAG_CHARS or any(
                not ch.isprintable() for ch in text
            ):
                problems.append(
                    f"{tag!r}: a free tag is free:<1 to {MAX_FREE_TAG_CHARS} printable "
                    "characters, without spaces at either end>."
                )
        elif _TAG.fullmatch(tag):
            coded.append(tag)
        else:
            problems.append(f"{tag!r}: not dimension:code or free:<text>.")
    if coded:
        rows = db.session.execute(
            select(TagCode.dimension, TagCode.code, TagCode.retired_at).where(
                (TagCode.dimension + ":" + TagCode.code).in_(coded)
            )
        ).all()
        live = {f"{d}:{c}" for d, c, retired in rows if retired is None}
        retired = {f"{d}:{c}" for d, c, retired_at in rows if retired_at is not None}
        for tag in coded:
            if tag in retired and tag not in current:
                problems.append(f"{tag!r}: retired; it cannot be added again.")
            elif tag not in live and tag not in retired:
                problems.append(f"{tag!r}: unknown tag.")
    if problems:
        raise ValidationError("Some tags are not allowed.", errors={"tags": problems})
    return wanted


def _set_tags(actor: User, report: Report, tags: list[str]) -> bool:
    tags = _valid_tags(tags, report.tags)
    added = [t for t in tags if t not in report.tags]
    removed = [t for t in report.tags if t not in tags]
    if not added and not removed:
        return False
    report.tags = tags
    record(actor, "report.tags", report_id=report.id, detail={"added": added, "removed": removed})
    return True


def update_report(
    actor: User, report_id: uuid.UUID, if_match: Collection[int] | None, changes: dict
) -> Report:
    """Replace the tags (`tags`: the whole set) and/or set `priority_override` (0-100 or None;
    supervisors only).

    Raises what `_changing` raises, ForbiddenError for an override by an analyst and
    ValidationError for tags that are unknown, retired or malformed.
    """
    if "priority_override" in changes:
        require_role(actor, Role.SUPERVISOR)
    report = _changing(actor, report_id, if_match)
    if "tags" in changes:
        _set_tags(actor, report, changes["tags"])
    if "priority_override" in changes and changes["priority_override"] != report.priority_override:
        record(actor, "report.priority_override", report_id=report.id,
               detail={"from": report.priority_override, "to": changes["priority_override"]})
        report.priority_override = changes["priority_override"]
    return _saved(report)


# -- claims --------------------------------------------------------------------------------------


def _take(actor: User, report: Report, assignee: User, action: str) -> None:
    if report.state not in CLAIMABLE:
        raise ConflictError(
            f"A {report.state} report cannot be claimed or assigned; reopen it first.",
            extensions={"state": report.state},
        )
    before_state, before = report.state, report.assignee_id
    if before == assignee.id:
        return
    report.assignee_id = assignee.id
    if report.state == S.NEW:
        report.state = S.IN_REVIEW.value
    detail = {"from": str(before) if before else None, "to": str(assignee.id)}
    if report.state != before_state:
        detail["state"] = {"from": before_state, "to": report.state}
    record(actor, action, report_id=report.id, detail=detail)


def claim_report(actor: User, report_id: uuid.UUID, if_match: Collection[int] | None) -> Report:
    """The caller becomes the assignee; a `new` report becomes `in_review`.

    Raises NotFoundError, PreconditionRequiredError, PreconditionFailedError, and ConflictError
    when another analyst holds the claim or the report is closed, dismissed or a duplicate.
    """
    report = _changing(actor, report_id, if_match)
    _take(actor, report, actor, "report.claim")
    return _saved(report)


def _release(actor: User, report: Report) -> None:
    if report.assignee_id is None:
        raise ConflictError("Nobody has claimed this report.")
    detail = {"from": str(report.assignee_id)}
    report.assignee_id = None
    if report.state == S.IN_REVIEW:
        report.state = S.NEW.value
        detail["state"] = {"from": S.IN_REVIEW.value, "to": S.NEW.value}
    record(actor, "report.release", report_id=report.id, detail=detail)


def release_report(actor: User, report_id: uuid.UUID, if_match: Collection[int] | None) -> Report:
    """Give up the claim: nobody is the assignee and an `in_review` report is `new` again.

    Raises as claim_report does; ConflictError also when nobody holds a claim.
    """
    report = _changing(actor, report_id, if_match)
    _release(actor, report)
    return _saved(report)


def _assignable(user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        raise ValidationError(
            "Assign to an active member of staff.", errors={"user_id": ["No active staff user."]}
        )
    return user


def assign_report(
    actor: User, report_id: uuid.UUID, if_match: Collection[int] | None, user_id: uuid.UUID
) -> Report:
    """Make `user_id` the assignee (supervisors only); a `new` report becomes `in_review`.

    Raises ForbiddenError for analysts, ValidationError for a user who is not active staff, and
    what claim_report raises.
    """
    require_role(actor, Role.SUPERVISOR)
    report = _changing(actor, report_id, if_match)
    _take(actor, report, _assignable(user_id), "report.assign")
    return _saved(report)


# -- state moves ---------------------------------------------------------------------------------


def _refuse_extra(move: dict, allowed: set[str]) -> None:
    extra = sorted(k for k in ("reason", "reason_code", "duplicate_of")
                   if move.get(k) is not None and k not in allowed)
    if extra:
        raise ValidationError(
            f"Not used when moving to {move['to']}.",
            errors={name: [f"Only for another target state than {move['to']}."] for name in extra},
        )


def find_report_id(actor: User, reference: str) -> uuid.UUID:
    """The id of the report with this reference (R-2026-000123; spaces and letter case do not
    matter) or this id, for the pages where staff type the report they mean (the report page's
    and the queue's "mark as duplicate").

    Raises ValidationError (on `duplicate_of`, where staff type it) when there is none.
    """
    require_staff(actor)
    text = "".join((reference or "").split()).upper()
    try:
        wanted = Report.id == uuid.UUID(text)
    except ValueError:
        wanted = Report.reference == text
    report_id = db.session.scalar(select(Report.id).where(wanted)) if text else None
    if report_id is None:
        raise ValidationError(
            "No report has that reference.",
            errors={"duplicate_of": [f"No report has the reference {text or '(empty)'}."]},
        )
    return report_id


def _duplicate_target(report: Report, other_id: uuid.UUID | None) -> Report:
    if other_id is None:
        raise ValidationError("Name the report this one repeats.",
                              errors={"duplicate_of": ["Required for duplicate."]})
    if other_id == report.id:
        raise ValidationError("A report cannot repeat itself.",
                              errors={"duplicate_of": ["Must be another report."]})
    other = db.session.get(Report, other_id)
    if other is None:
        raise ValidationError("No such report.", errors={"duplicate_of": ["No such report."]})
    if other.state == S.DUPLICATE:
        raise ValidationError(
            "That report is itself a duplicate; name the report it repeats.",
            errors={"duplicate_of": [f"A duplicate of {other.duplicate_of_id}."]},
        )
    return other


def _transition(actor: User, report: Report, move: dict) -> None:
    source, target = report.state, move["to"]
    allowed = TRANSITIONS[S(source)]
    if target not in allowed:
        names = sorted(str(s) for s in allowed)
        why = ("Only the triage job moves a received report." if source == S.RECEIVED
               else f"From {source} a report can move to: {', '.join(names)}.")
        raise ConflictError(why, extensions={"state": source, "allowed": names})
    if source in REOPENED_FROM:
        require_role(actor, Role.SUPERVISOR)
    detail: dict = {"from": source, "to": target}
    if target == S.DISMISSED:
        _refuse_extra(move, {"reason", "reason_code"})
        code = move.get("reason_code")
        if code not in DISMISS_REASON_CODES:
            raise ValidationError(
                "Say why the report is dismissed.",
                errors={"reason_code": [f"One of {', '.join(DISMISS_REASON_CODES)}."]},
            )
        if code == "other" and not move.get("reason"):
            raise ValidationError("Explain the dismissal.",
                                  errors={"reason": ["Required with reason_code other."]})
        report.dismiss_reason_code = code
        detail["reason_code"] = code
    elif target == S.DUPLICATE:
        _refuse_extra(move, {"reason", "duplicate_of"})
        report.duplicate_of_id = _duplicate_target(report, move.get("duplicate_of")).id
        detail["duplicate_of"] = str(report.duplicate_of_id)
    else:
        _refuse_extra(move, {"reason"})
    if move.get("reason"):
        # Staff's own words on why: never the reporter's text.
        detail["reason"] = check_text("reason", move["reason"], MAX_REASON_CHARS,
                                      "The reason cannot be saved like this.")
    if source == S.DISMISSED:
        report.dismiss_reason_code = None
    if source == S.DUPLICATE:
        report.duplicate_of_id = None
    if target == S.NEW:
        # in_review -> new is the release of the claim.
        report.assignee_id = None
    elif target == S.IN_REVIEW and report.assignee_id is None:
        report.assignee_id = actor.id
    report.state = target
    record(actor, "report.transition", report_id=report.id, detail=detail)


def transition_report(
    actor: User, report_id: uuid.UUID, if_match: Collection[int] | None, move: dict
) -> Report:
    """Move the report along the contract's table. `move` has `to` and, as the target needs,
    `reason_code` and `reason` (dismissed) or `duplicate_of` (duplicate).

    Raises ConflictError (409, naming the allowed moves) for a move not in the table,
    ForbiddenError for a reopen by an analyst, ValidationError for a missing or wrong reason or
    duplicate_of, and what claim_report raises.
    """
    report = _changing(actor, report_id, if_match)
    _transition(actor, report, move)
    return _saved(report)


# -- notes and replies (no If-Match: they add rows and leave the report as it is) ----------------


def add_note(actor: User, report_id: uuid.UUID, body: str) -> ReportNote:
    """A private note by staff. Raises NotFoundError and ConflictError (claimed by another)."""
    require_staff(actor)
    report = lock_report(report_id)
    check_claim(actor, report)
    body = check_text("body", body, MAX_NOTE_CHARS, "The note cannot be saved like this.")
    note = ReportNote(report_id=report.id, author_id=actor.id, body=body)
    db.session.add(note)
    db.session.flush()
    record(actor, "report.note", report_id=report.id, detail={"note_id": str(note.id)})
    return note


def add_reply(actor: User, report_id: uuid.UUID, body: str) -> ReportMessage:
    """A message to the reporter: they see it on their status endpoint as from "analyst",
    never with a name. Raises NotFoundError and ConflictError (claimed by another)."""
    require_staff(actor)
    report = lock_report(report_id)
    check_claim(actor, report)
    body = check_text("body", body, MAX_REPLY_CHARS, "The reply cannot be sent like this.")
    message = ReportMessage(
        report_id=report.id, sender=MessageSender.ANALYST.value, author_id=actor.id, body=body
    )
    db.session.add(message)
    db.session.flush()
    record(actor, "report.reply", report_id=report.id, detail={"message_id": str(message.id)})
    return message


# -- bulk ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    id: uuid.UUID
    status: int
    version: int | None = None
    problem: ProblemError | None = None


def _bulk_action(actor: User, action: str, fields: dict) -> Callable[[Report], None]:
    if action == "transition":
        return lambda report: _transition(actor, report, fields)
    if action == "assign":
        require_role(actor, Role.SUPERVISOR)
        assignee = _assignable(fields["user_id"])
        return lambda report: _take(actor, report, assignee, "report.assign")
    if action == "add_tags":
        return lambda report: _set_tags(actor, report, [*report.tags, *fields["tags"]])
    if action == "remove_tags":
        drop = set(fields["tags"])
        return lambda report: _set_tags(actor, report, [t for t in report.tags if t not in drop])
    raise ValidationError("Unknown action.", errors={"action": [f"Unknown: {action}."]})


def bulk_change(actor: User, ids: list[uuid.UUID], action: str, fields: dict) -> list[BulkResult]:
    """Apply one action to each report on its own (a savepoint each), to its current version:
    there is no If-Match in bulk. A row's failure is reported and undoes only that row.

    Raises ForbiddenError (assign by an analyst) and ValidationError (an assignee who is not
    active staff, too many ids) for the whole request, before anything changes.
    """
    require_staff(actor)
    if len(ids) > MAX_BULK_IDS:
        raise ValidationError(f"At most {MAX_BULK_IDS} reports.", errors={"ids": ["Too many."]})
    apply = _bulk_action(actor, action, fields)
    results = []
    for report_id in dict.fromkeys(ids):
        savepoint = db.session.begin_nested()
        try:
            report = lock_report(report_id)
            check_claim(actor, report)
            apply(report)
            db.session.flush()
            version = report.version
            savepoint.commit()
            results.append(BulkResult(id=report_id, status=200, version=version))
        except ProblemError as error:
            savepoint.rollback()
            results.append(BulkResult(id=report_id, status=error.status, problem=error))
    return results


# -- audited reads -------------------------------------------------------------------------------


def reveal_contact(actor: User, report_id: uuid.UUID, reason: str) -> dict:
    """The reporter's decrypted contact details (supervisors only), audited with `reason`.

    Raises ForbiddenError for analysts, ValidationError without a reason, NotFoundError for an
    unknown report or one without contact details.
    """
    require_role(actor, Role.SUPERVISOR)
    reason = check_text("reason", reason, MAX_CONTACT_REASON_CHARS,
                        "Say why you need the contact details.")
    report = db.session.get(Report, report_id)
    if report is None or report.contact_encrypted is None:
        raise NotFoundError("No contact details for this report.")
    details = ContactCipher(settings().DATA_ENCRYPTION_KEY).decrypt(report.contact_encrypted)
    record(actor, "contact.read", report_id=report.id, detail={"reason": reason.strip()})
    return details


PHOTO_VARIANTS = ("display", "thumb")


def open_photo(actor: User, photo_id: uuid.UUID, variant: str) -> BinaryIO:
    """The clean JPEG of a ready photo (`display` or `thumb`), audited as `photo.read`.

    Raises NotFoundError for an unknown photo or one that is not ready (still processing,
    rejected, or its file is gone).
    """
    require_staff(actor)
    photo = db.session.get(Photo, photo_id)
    key = None
    if photo is not None and photo.status == PhotoStatus.READY.value:
        key = photo.display_key if variant == "display" else photo.thumb_key
    if key is None or variant not in PHOTO_VARIANTS:
        raise NotFoundError("No ready photo with this id.")
    try:
        stream = storage().open(key)
    except FileNotFoundError as exc:
        raise NotFoundError("No ready photo with this id.") from exc
    record(actor, "photo.read", report_id=photo.report_id,
           detail={"photo_id": str(photo.id), "variant": variant})
    return stream


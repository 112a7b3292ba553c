"""The analysts' queue and the full view of one report: reads only (a read of a report is audited).

Every page of the queue is one SQL statement whatever the filters: the photo and
possible-duplicate counts and the assignee's name are correlated subqueries, which PostgreSQL
evaluates for the page's rows only, after the sort and the limit. Paging is keyset, never
OFFSET: the cursor holds the last row's sort key and id, so a report added while an analyst
pages is neither skipped nor shown twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Float, and_, func, literal, literal_column, select, tuple_

from stopapp.accounts.models import User
from stopapp.accounts.permissions import require_staff
from stopapp.areas.models import Area
from stopapp.audit.models import AuditEvent
from stopapp.audit.services import record
from stopapp.constants import SRID, PhotoStatus, ReportState
from stopapp.errors import NotFoundError, ValidationError
from stopapp.extensions import db
from stopapp.media.models import Photo
from stopapp.reports.models import Report, ReportMessage
from stopapp.review.models import ReportLink, ReportNote

DEFAULT_STATES = (ReportState.NEW.value, ReportState.IN_REVIEW.value)
SORTS = ("priority", "oldest", "newest")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
EXCERPT_CHARS = 200

# The priority order is "queue_priority high to low, then oldest, then id". It is written with
# the negated priority so that the whole key runs one way and a row comparison
# (-queue_priority, created_at, id) > (...) both pages and seeks in the matching index
# (ix_reports_open_priority, ix_reports_state_priority).
_neg_priority = (-Report.queue_priority).label("neg_priority")


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters, validated by the caller's schema (see api/triage_reports.py)."""

    states: tuple[str, ...] = DEFAULT_STATES
    type: str | None = None
    tags: tuple[str, ...] = ()
    # "me", "none" or a user id.
    assignee: str | uuid.UUID | None = None
    area: str | None = None
    # (min_lon, min_lat, max_lon, max_lat), WGS 84 degrees.
    bbox: tuple[float, float, float, float] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = None
    sort: str = "priority"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    counts: bool = False


@dataclass
class QueuePage:
    items: list[dict]
    next_cursor: str | None
    counts: dict[str, int] | None = field(default=None)


# -- the cursor --------------------------------------------------------------------------------


def _encode_cursor(sort: str, row) -> str:
    if sort == "priority":
        key = [row.neg_priority, row.created_at.isoformat(), str(row.id)]
    else:
        key = [row.created_at.isoformat(), str(row.id)]
    raw = json.dumps([sort, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor() -> ValidationError:
    return ValidationError(
        "The cursor is not one this queue gave out.",
        errors={"cursor": ["Not a valid cursor for this sort; start again without it."]},
    )


def _decode_cursor(cursor: str, sort: str) -> tuple:
    """The sort key in `cursor`. Raises ValidationError (naming `cursor`) for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_cursor() from exc
    expected = 4 if sort == "priority" else 3
    if not isinstance(value, list) or len(value) != expected or value[0] != sort:
        raise _bad_cursor()
    try:
        created_at = datetime.fromisoformat(value[-2])
        report_id = uuid.UUID(value[-1])
    except (TypeError, ValueError) as exc:
        raise _bad_cursor() from exc
    if created_at.tzinfo is None:
        raise _bad_cursor()
    if sort == "priority":
        priority = value[1]
        if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1000:
            raise _bad_cursor()
        return priority, created_at, report_id
    return created_at, report_id


# -- filters -----------------------------------------------------------------------------------


def _bbox_condition(bbox: tuple[float, float, float, float]):
    """Points inside the longitude/latitude rectangle.

    Tested on the planar view of the point (its own GiST index, ix_reports_location_geometry):
    for a point, && with a rectangle is the exact test (to the index's float precision, about
    a decimetre), the rectangle's edges are the parallels and meridians the client means
    rather than great-circle arcs, and the index's statistics tell the planner how many rows
    a box holds, so that it walks the queue's order for a large box and collects a small box
    first.
    """
    # Constants in the SQL, like the states: with bound parameters the generic plan of a
    # prepared statement can neither estimate the box nor fold the envelope into a constant.
    corners = [literal(float(v), Float, literal_execute=True) for v in bbox]
    envelope = func.ST_MakeEnvelope(*corners, literal(SRID, literal_execute=True))
    return func.geometry(Report.location).op("&&")(envelope)


# Implied by any `@>` of a non-empty list, and written out so that the planner can use the
# partial indexes ix_reports_tags and ix_reports_area_codes (their predicates, NOT_UNTAGGED and
# NOT_OUTSIDE_AREAS in stopapp/reports/models.py): a report without tags or areas, as every
# new report is, is not in them.
_EMPTY = literal_column("'{}'")


def _filters(actor: User, query: QueueQuery) -> list:
    """Every condition but the state and the cursor."""
    conditions = []
    if query.type:
        conditions.append(Report.exploitation_types.contains([query.type]))
    if query.tags:
        conditions.append(Report.tags.contains(list(query.tags)))
        conditions.append(Report.tags != _EMPTY)
    if query.assignee == "me":
        conditions.append(Report.assignee_id == actor.id)
    elif query.assignee == "none":
        conditions.append(Report.assignee_id.is_(None))
    elif query.assignee is not None:
        conditions.append(Report.assignee_id == query.assignee)
    if query.area:
        conditions.append(Report.area_codes.contains([query.area]))
        conditions.append(Report.area_codes != _EMPTY)
    if query.bbox:
        conditions.append(_bbox_condition(query.bbox))
    if query.created_from:
        conditions.append(Report.created_at >= query.created_from)
    if query.created_to:
        conditions.append(Report.created_at < query.created_to)
    if query.q:
        conditions.append(
            Report.search_vector.op("@@")(func.websearch_to_tsquery("simple", query.q))
        )
    return conditions


def _state_condition(states: tuple[str, ...]):
    # The states are written into the SQL as constants, not bound as parameters: the planner
    # must see them to use the partial indexes of the open queue (state IN ('new',
    # 'in_review')), also in the generic plan of a statement psycopg has prepared.
    known = [ReportState(s).value for s in sorted(states)]
    return Report.state.in_([literal(s, literal_execute=True) for s in known])


def _order_and_seek(query: QueueQuery):
    if query.sort == "priority":
        key = (_neg_priority.element, Report.created_at, Report.id)
        order = list(key)
    elif query.sort == "oldest":
        key = (Report.created_at, Report.id)
        order = list(key)
    else:
        key = (Report.created_at, Report.id)
        order = [Report.created_at.desc(), Report.id.desc()]
    seek = None
    if query.cursor:
        after = _decode_cursor(query.cursor, query.sort)
        seek = (tuple_(*key) < tuple_(*after) if query.sort == "newest"
                else tuple_(*key) > tuple_(*after))
    return order, seek


def _summary_columns():
    photo_count = (
        select(func.count())
        .where(Photo.report_id == Report.id, Photo.status != PhotoStatus.REJECTED.value)
        .correlate(Report)
        .scalar_subquery()
    )
    duplicate_count = (
        select(func.count()).where(ReportLink.report_id == Report.id).correlate(Report)
        .scalar_subquery()
    )
    # A subquery rather than a join: like the counts, it is evaluated for the page's rows only,
    # after the sort and the limit.
    assignee_name = (
        select(User.name).where(User.id == Report.assignee_id).correlate(Report).scalar_subquery()
    )
    point = func.geometry(Report.location)
    return [
        Report.id, Report.reference, Report.state, Report.priority, Report.priority_reasons,
        Report.priority_override,
        Report.created_at,
        Report.occurred_at, Report.exploitation_types, Report.tags, Report.area_codes,
        func.left(Report.description, EXCERPT_CHARS).label("excerpt"),
        func.ST_Y(point).label("lat"), func.ST_X(point).label("lon"),
        Report.location_accuracy_m,
        Report.assignee_id, assignee_name.label("assignee_name"),
        photo_count.label("photo_count"), duplicate_count.label("possible_duplicate_count"),
        _neg_priority,
    ]


def queue_statement(actor: User, query: QueueQuery):
    """The one SELECT of a queue page (exposed for the benchmark, which times it bare).

    Raises ValidationError for a cursor that is not valid for the sort.
    """
    order, seek = _order_and_seek(query)
    conditions = [_state_condition(query.states), *_filters(actor, query)]
    if seek is not None:
        conditions.append(seek)
    return (
        select(*_summary_columns())
        .where(and_(*conditions))
        .order_by(*order)
        .limit(query.limit + 1)
    )


def _summary(row) -> dict:
    location = None
    if row.lat is not None:
        location = {"lat": row.lat, "lon": row.lon, "accuracy_m": row.location_accuracy_m}
    assignee = None
    if row.assignee_id is not None:
        assignee = {"id": row.assignee_id, "name": row.assignee_name}
    return {
        "id": row.id, "reference": row.reference, "state": row.state, "priority": row.priority,
        # The web queue shows them on hover; the API's summary leaves them out (dump_summary).
        "priority_reasons": row.priority_reasons,
        "priority_override": row.priority_override,
        "created_at": row.created_at, "occurred_at": row.occurred_at,
        "exploitation_types": row.exploitation_types, "tags": row.tags, "assignee": assignee,
        "areas": row.area_codes, "photo_count": row.photo_count,
        "possible_duplicate_count": row.possible_duplicate_count, "excerpt": row.excerpt,
        "location": location,
    }


def state_counts(actor: User, query: QueueQuery) -> dict[str, int]:
    """Reports per state matching every filter but `state` (one GROUP BY); 0 for the rest."""
    rows = db.session.execute(
        select(Report.state, func.count()).where(and_(True, *_filters(actor, query)))
        .group_by(Report.state)
    )
    counts = dict.fromkeys((s.value for s in ReportState), 0)
    counts.update({state: number for state, number in rows})
    return counts


def list_reports(actor: User, query: QueueQuery) -> QueuePage:
    """One page of the queue, and the number per state when `query.counts` asks for it.

    Raises UnauthorizedError/ForbiddenError for a caller who is not active staff and
    ValidationError for a bad cursor. Listing is not audited: it shows summaries only.
    """
    require_staff(actor)
    rows = db.session.execute(queue_statement(actor, query)).all()
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        next_cursor = _encode_cursor(query.sort, rows[-1])
    counts = state_counts(actor, query) if query.counts else None
    return QueuePage(items=[_summary(r) for r in rows], next_cursor=next_cursor, counts=counts)


def report_references(actor: User, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The reference of each of `ids` that exists (to name them in a bulk action's results).

    Raises UnauthorizedError/ForbiddenError for a caller who is not active staff.
    """
    require_staff(actor)
    if not ids:
        return {}
    rows = db.session.execute(select(Report.id, Report.reference).where(Report.id.in_(ids)))
    return {report_id: reference for report_id, reference in rows}


# -- one report --------------------------------------------------------------------------------


def _people(ids: set) -> dict:
    ids.discard(None)
    if not ids:
        return {}
    return {
        user.id: {"id": user.id, "name": user.name}
        for user in db.session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    }


def report_detail(actor: User, report_id: uuid.UUID) -> dict:
    """Everything staff may see of a report, and its history; records `report.read`.

    The contact details are shown only as present or not (see reveal_contact).
    Raises UnauthorizedError/ForbiddenError for a caller who is not active staff and
    NotFoundError for an unknown report.
    """
    require_staff(actor)
    row = db.session.execute(
        select(
            Report,
            func.ST_Y(func.geometry(Report.location)).label("lat"),
            func.ST_X(func.geometry(Report.location)).label("lon"),
        ).where(Report.id == report_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError("No report with this id.")
    report = row.Report
    record(actor, "report.read", report_id=report.id)

    photos = db.session.execute(
        select(
            Photo,
            func.ST_Y(func.geometry(Photo.gps_location)).label("lat"),
            func.ST_X(func.geometry(Photo.gps_location)).label("lon"),
        ).where(Photo.report_id == report.id).order_by(Photo.created_at, Photo.id)
    ).all()
    messages = db.session.scalars(
        select(ReportMessage).where(ReportMessage.report_id == report.id)
        .order_by(ReportMessage.created_at, ReportMessage.id)
    ).all()
    notes = db.session.scalars(
        select(ReportNote).where(ReportNote.report_id == report.id)
        .order_by(ReportNote.created_at, ReportNote.id)
    ).all()
    links = db.session.execute(
        select(ReportLink, Report.reference).join(Report, Report.id == ReportLink.other_id)
        .where(ReportLink.report_id == report.id)
        .order_by(ReportLink.text_similarity.desc(), ReportLink.other_id)
    ).all()
    areas = db.session.execute(
        select(Area.code, Area.name).where(Area.code.in_(report.area_codes)).order_by(Area.code)
    ).all() if report.area_codes else []
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.report_id == report.id, AuditEvent.action.not_like("%.read"))
        .order_by(AuditEvent.id)
    ).all()
    people = _people(
        {report.assignee_id}
        | {m.author_id for m in messages}
        | {n.author_id for n in notes}
        | {e.actor_id for e in events}
    )

    location = None
    if row.lat is not None:
        location = {"lat": row.lat, "lon": row.lon, "accuracy_m": report.location_accuracy_m,
                    "source": report.location_source}
    app_info = None
    if report.app_platform or report.app_version:
        app_info = {"platform": report.app_platform, "version": report.app_version}
    return {
        "id": report.id,
        "reference": report.reference,
        "created_at": report.created_at,
        "updated_at": report.updated_at,
        "description": report.description,
        "exploitation_types": report.exploitation_types,
        "location": location,
        "place": report.place,
        "occurred_at": report.occurred_at,
        "occurred_precision": report.occurred_precision,
        "ongoing": report.ongoing,
        "people": report.people,
        "vehicles": report.vehicles,
        "language": report.language,
        "app": app_info,
        "contact": {"present": report.contact_encrypted is not None},
        "state": report.state,
        "version": report.version,
        "priority": report.priority,
        "priority_reasons": report.priority_reasons,
        "priority_override": report.priority_override,
        "enrichment_failed": report.enrichment_failed,
        "duplicate_of": report.duplicate_of_id,
        "dismiss_reason_code": report.dismiss_reason_code,
        "assignee": people.get(report.assignee_id),
        "tags": report.tags,
        "areas": [{"code": code, "name": name} for code, name in areas],
        "photos": [_photo(p.Photo, p.lat, p.lon) for p in photos],
        "messages": [
            {"id": m.id, "from": m.sender, "body": m.body, "sent_at": m.created_at,
             "author": people.get(m.author_id)}
            for m in messages
        ],
        "notes": [
            {"id": n.id, "body": n.body, "author": people.get(n.author_id),
             "created_at": n.created_at}
            for n in notes
        ],
        "possible_duplicates": [
            {"id": link.other_id, "reference": reference, "distance_m": link.distance_m,
             "hours_apart": link.hours_apart, "text_similarity": link.text_similarity,
             "photo_match": link.photo_match}
            for link, reference in links
        ],
        "history": [
            {"id": e.id, "at": e.at, "actor": people.get(e.actor_id), "action": e.action,
             "detail": e.detail}
            for e in events
        ],
    }


def _photo(photo: Photo, lat: float | None, lon: float | None) -> dict:
    ready = photo.status == PhotoStatus.READY.value
    # The camera's clock without a zone is shown as it was recorded, without one.
    taken_at = None
    if photo.captured_at is not None:
        taken_at = photo.captured_at.astimezone(UTC).isoformat(timespec="seconds")
        taken_at = taken_at.replace("+00:00", "Z")
    elif photo.captured_at_local is not None:
        taken_at = photo.captured_at_local.isoformat(timespec="seconds")
    return {
        "id": photo.id,
        "status": photo.status,
        "reason": photo.reject_reason,
        "width": photo.width,
        "height": photo.height,
        "taken_at": taken_at,
        "gps": {"lat": lat, "lon": lon} if lat is not None else None,
        "ready": ready,
    }


"""The rules for photos: accepting an upload, processing it, and never keeping the original.

An upload is streamed into quarantine, checked (type by content, size, pixel count, a real
decode) and recorded as `processing`; a job then rebuilds it as two metadata-free JPEGs and
deletes the original whatever the outcome. A quarantined file that lost its row (a crash
between writing it and committing) is swept by the reconciler.

Nothing that could match the original to its report outlives the retry window: a retry is
recognised by an HMAC of the upload (never a plain hash, which anyone holding the photo could
compute), and that digest and the idempotency key are erased once PHOTO_RETRY_WINDOW_S has
passed since the upload (at the end of processing, or by the reconciler).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from geoalchemy2.elements import WKTElement
from sqlalchemy import func, select, update

from stopapp.constants import SRID, PhotoStatus
from stopapp.errors import (
    ConflictError,
    IdempotencyMismatchError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from stopapp.extensions import db, redis_client, settings
from stopapp.media.imaging import ImageRejected, PixelBudget, process_image, validate_upload
from stopapp.media.models import Photo
from stopapp.media.phash import keyed, perceptual_hash
from stopapp.media.storage import LocalStorage, QuarantineTooLarge, Storage
from stopapp.reports.models import Report, utcnow
from stopapp.reports.services import report_for_reporter
from stopapp.review.enrichment import photo_matches_job
from stopapp.security import idempotency_key_hash
from stopapp.tasks import QUEUE_MEDIA, JobSpec, enqueue_after_commit

log = logging.getLogger(__name__)

# Delayed retries for transient failures (storage, database); after the last one the photo is
# rejected as `processing_failed` and its original deleted.
RETRY_INTERVALS_S = (10, 60, 300)
MAX_ATTEMPTS = 1 + len(RETRY_INTERVALS_S)


def storage() -> Storage:
    """The media store of the current app (a folder now; an object store can replace it)."""
    config = settings()
    return _local_storage(config.MEDIA_ROOT, config.PHOTO_DIGEST_KEY)


@functools.lru_cache(maxsize=8)
def _local_storage(root: str, digest_key: str) -> LocalStorage:
    # One per folder and process: building it creates and chmods the folders, which need not
    # happen again on every upload and every job.
    address_key = hmac.new(digest_key.encode(), b"media-address", hashlib.sha256).digest()
    return LocalStorage(root, address_key)


@functools.lru_cache(maxsize=8)
def _decode_budget(pixels: int) -> PixelBudget:
    # One per process (and setting): it bounds what this process's threads decode at once.
    return PixelBudget(pixels)


def process_job(photo_id: uuid.UUID) -> JobSpec:
    """The processing job of one photo (deterministic id: queueing twice is harmless)."""
    return JobSpec(
        func="workers.jobs.process_photo",
        args=(str(photo_id),),
        job_id=f"process-photo-{photo_id}",
        queue=QUEUE_MEDIA,
        timeout_s=300,
        retry_intervals_s=RETRY_INTERVALS_S,
    )


class _DigestingReader:
    """Reads through a stream while computing the keyed digest of what passes."""

    def __init__(self, stream: BinaryIO, key: str, report_id: uuid.UUID) -> None:
        self._stream = stream
        # Scoped to the report: the same photo sent to two reports does not link them.
        self.digest = hmac.new(key.encode(), b"photo-upload:" + report_id.bytes, hashlib.sha256)

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.digest.update(chunk)
        return chunk


@dataclass(frozen=True)
class AcceptedPhoto:
    photo: Photo
    created: bool


def _rejection(error: ImageRejected) -> Exception:
    if error.status == 415:
        return UnsupportedMediaTypeError(
            "Send a JPEG, PNG, WebP or HEIC/HEIF photo.", errors={"photo": [error.code]}
        )
    return ValidationError(f"The photo cannot be accepted: {error.detail}.",
                           errors={"photo": [error.code]})


def _quarantine(upload: BinaryIO, store: Storage, report_id: uuid.UUID) -> tuple[str, bytes]:
    """Stream the upload into quarantine; returns its key and the upload's keyed digest."""
    config = settings()
    reader = _DigestingReader(upload, config.PHOTO_DIGEST_KEY, report_id)
    try:
        # The byte count is not kept: the digest covers the length too.
        key, _ = store.quarantine_put(reader, config.MAX_PHOTO_BYTES)
    except QuarantineTooLarge as exc:
        raise PayloadTooLargeError(
            f"A photo may be at most {config.MAX_PHOTO_BYTES} bytes.",
            errors={"photo": ["too_large"]},
        ) from exc
    return key, reader.digest.digest()


def accept_photo(
    report_id: uuid.UUID,
    receipt: str | None,
    idempotency_key: uuid.UUID,
    open_upload: Callable[[], BinaryIO],
) -> AcceptedPhoto:
    """Quarantine and check an upload for a report, and queue its processing after commit.

    `open_upload` is called only once the receipt has been checked, so an unauthenticated
    request never has its body read. A retry with the same Idempotency-Key and the same bytes
    within PHOTO_RETRY_WINDOW_S returns the first photo; a later one makes a new photo.

    Raises NotFoundError (unknown report or wrong receipt), PayloadTooLargeError (over
    MAX_PHOTO_BYTES), ConflictError (the report has its maximum of photos),
    UnsupportedMediaTypeError (not JPEG, PNG, WebP or HEIF by content), ValidationError
    (empty, undecodable, truncated, too many pixels, a decompression bomb) and
    IdempotencyMismatchError (the key was used for other bytes).
    """
    report = report_for_reporter(report_id, receipt)
    store = storage()
    key, digest = _quarantine(open_upload(), store, report.id)
    try:
        accepted = _record(report, idempotency_key, store, key, digest)
    except BaseException:
        store.quarantine_delete(key)
        raise
    if not accepted.created:
        store.quarantine_delete(key)
    return accepted


def _record(
    report: Report, idempotency_key: uuid.UUID, store: Storage, key: str, digest: bytes
) -> AcceptedPhoto:
    key_hash = idempotency_key_hash(idempotency_key, scope=f"photo:{report.id}")
    # Serialise uploads to one report, so that two at once cannot both take the last place.
    db.session.execute(select(Report.id).where(Report.id == report.id).with_for_update())
    existing = db.session.scalar(
        select(Photo).where(Photo.report_id == report.id, Photo.idempotency_key_hash == key_hash)
    )
    if existing is not None and _past_retry_window(existing):
        # The reconciler has not erased it yet; a retry this late is a new photo all the same.
        _forget_upload(existing)
        db.session.flush()
        existing = None
    if existing is not None:
        if not hmac.compare_digest(existing.upload_digest, digest):
            raise IdempotencyMismatchError(
                "This Idempotency-Key was already used for a different photo.",
                errors={"Idempotency-Key": ["Already used with a different photo."]},
            )
        return AcceptedPhoto(photo=existing, created=False)

    config = settings()
    kept = db.session.scalar(
        select(func.count()).select_from(Photo).where(
            Photo.report_id == report.id, Photo.status != PhotoStatus.REJECTED.value
        )
    )
    if kept >= config.MAX_PHOTOS_PER_REPORT:
        raise ConflictError(f"A report may have at most {config.MAX_PHOTOS_PER_REPORT} photos.")
    try:
        validate_upload(
            store.quarantine_path(key),
            max_pixels=config.MAX_PHOTO_PIXELS,
            budget=_decode_budget(config.UPLOAD_DECODE_PIXELS),
        )
    except ImageRejected as exc:
        raise _rejection(exc) from exc

    photo = Photo(
        report_id=report.id,
        idempotency_key_hash=key_hash,
        upload_digest=digest,
        status=PhotoStatus.PROCESSING.value,
        quarantine_key=key,
    )
    db.session.add(photo)
    db.session.flush()
    enqueue_after_commit(db.session(), redis_client(), process_job(photo.id))
    return AcceptedPhoto(photo=photo, created=True)


def start_attempt(photo_id: uuid.UUID) -> int | None:
    """Count one more processing attempt; None when the photo is no longer processing."""
    photo = db.session.get(Photo, photo_id, with_for_update=True)
    if photo is None or photo.status != PhotoStatus.PROCESSING.value:
        return None
    photo.attempts += 1
    db.session.flush()
    return photo.attempts


def _retry_window() -> timedelta:
    return timedelta(seconds=settings().PHOTO_RETRY_WINDOW_S)


def _past_retry_window(photo: Photo) -> bool:
    return photo.created_at <= utcnow() - _retry_window()


def _forget_upload(photo: Photo) -> None:
    photo.upload_digest = None
    photo.idempotency_key_hash = None


def _finish(photo: Photo, status: PhotoStatus, reason: str | None = None) -> str | None:
    """Mark the photo done; returns the quarantine key for the caller to delete after commit.

    The upload's digest stays only while a retry may still come (the retry window): a retry
    after processing must still get this photo, and another photo under the same key must
    still be refused, and only the digest can tell the two apart.
    """
    key = photo.quarantine_key
    photo.status = status.value
    photo.reject_reason = reason
    photo.quarantine_key = None
    photo.processed_at = utcnow()
    if _past_retry_window(photo):
        _forget_upload(photo)
    db.session.flush()
    return key


def process_photo(photo_id: uuid.UUID) -> str | None:
    """Rebuild a quarantined photo as metadata-free display and thumbnail JPEGs.

    Keeps the GPS position and capture time from its EXIF as analyst-only evidence; device
    make, model and serial are never read into the database. A photo that is not an acceptable
    image after all is rejected with the reason code. Safe to run twice: a photo no longer
    `processing` is left alone.

    Returns the quarantine key to delete once the caller has committed, or None.
    Raises OSError (storage) for the job to retry.
    """
    photo = db.session.get(Photo, photo_id, with_for_update=True)
    if photo is None or photo.status != PhotoStatus.PROCESSING.value:
        return None
    store = storage()
    config = settings()
    try:
        result = process_image(
            store.quarantine_path(photo.quarantine_key), max_pixels=config.MAX_PHOTO_PIXELS
        )
    except ImageRejected as exc:
        return _finish(photo, PhotoStatus.REJECTED, exc.code)
    except FileNotFoundError:
        # The original is gone (a sweep, or a lost disk): nothing left to process.
        return _finish(photo, PhotoStatus.REJECTED, "original_missing")
    photo.display_key = store.put(result.display_jpeg, ".jpg")
    photo.thumb_key = store.put(result.thumb_jpeg, ".jpg")
    photo.width, photo.height = result.display_size
    # For finding photo twins in other reports (perceptual hash of the clean copy only).
    photo.phash = keyed(perceptual_hash(result.display_jpeg), settings().PHOTO_DIGEST_KEY)
    enqueue_after_commit(db.session(), redis_client(), photo_matches_job(photo.report_id))
    if result.gps is not None:
        lat, lon = result.gps
        photo.gps_location = WKTElement(f"POINT({lon!r} {lat!r})", srid=SRID)
    if result.captured_at is not None:
        if result.captured_at.tzinfo is None:
            photo.captured_at_local = result.captured_at
        else:
            photo.captured_at = result.captured_at
    return _finish(photo, PhotoStatus.READY)


def fail_photo(photo_id: uuid.UUID, error: str) -> str | None:
    """Reject a photo whose processing failed for good; returns the quarantine key to delete."""
    photo = db.session.get(Photo, photo_id, with_for_update=True)
    if photo is None or photo.status != PhotoStatus.PROCESSING.value:
        return None
    photo.last_error = error[:500]
    return _finish(photo, PhotoStatus.REJECTED, "processing_failed")


def photos_awaiting_processing(older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Ids of photos still `processing` after `older_than`: their job was lost or never sent."""
    return list(
        db.session.scalars(
            select(Photo.id)
            .where(Photo.status == PhotoStatus.PROCESSING.value,
                   Photo.created_at < utcnow() - older_than)
            .order_by(Photo.created_at)
            .limit(limit)
        )
    )


def forget_expired_uploads() -> int:
    """Erase the digest and idempotency key of every upload older than the retry window.

    A retry arriving later is then a new photo. Returns how many photos it touched.
    """
    result = db.session.execute(
        update(Photo)
        .where(Photo.upload_digest.is_not(None), Photo.created_at <= utcnow() - _retry_window())
        .values(upload_digest=None, idempotency_key_hash=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def rename_stored_copies() -> set[str]:
    """Give every stored copy the name the current store gives it (a keyed digest).

    Copies stored before names were keyed are named by a plain SHA-256 that anyone holding
    the original can recompute (processing is deterministic). Returns the old keys, which no
    row points at any more, for the caller to delete once this has committed.
    """
    store = storage()
    old_keys = set()
    photos = db.session.scalars(
        select(Photo).where(Photo.display_key.is_not(None)).with_for_update()
    )
    for photo in photos:
        for column in ("display_key", "thumb_key"):
            key = getattr(photo, column)
            try:
                with store.open(key) as fh:
                    new_key = store.put(fh.read(), os.path.splitext(key)[1])
            except FileNotFoundError:
                continue  # a lost copy: nothing to rename
            if new_key != key:
                setattr(photo, column, new_key)
                old_keys.add(key)
    db.session.flush()
    return old_keys


def sweep_quarantine(older_than: timedelta) -> int:
    """Delete quarantined uploads that no photo row points at (a crash between writing the
    file and committing its row). Returns how many it deleted.
    """
    store = storage()
    candidates = store.quarantine_keys(older_than.total_seconds())
    if not candidates:
        return 0
    referenced = set(
        db.session.scalars(select(Photo.quarantine_key).where(Photo.quarantine_key.in_(candidates)))
    )
    orphans = [key for key in candidates if key not in referenced]
    for key in orphans:
        store.quarantine_delete(key)
    return len(orphans)

"""Processing uploaded photos: the job (in-process and in a real RQ worker), the reconciler and
the quarantine sweep.

What must hold in every outcome: the stored copies carry nothing but pixels, the device that
took the photo is recorded nowhere, and the raw upload is deleted once processing has ended
(ready, rejected, or failed for good).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat
from rq import Queue
from sqlalchemy import func, select, text, update

from stopapp.constants import PhotoStatus
from stopapp.extensions import db
from stopapp.media import services as media
from stopapp.media.storage import LocalStorage
from stopapp.models import Photo
from tests.conftest import DEAD_REDIS_URL
from tests.media.conftest import (
    ACCEPTED_PHOTOS,
    FORBIDDEN_BYTES,
    assert_bare_jpeg,
    device_secrets,
    gps_rational_bytes,
    photo,
)
from tests.test_photos_api import (
    STATUS_URL,
    Reported,
    media_job_ids,
    media_root,
    new_report,
    photo_bytes,
    quarantined,
    row_as_bytes,
    stored_media,
    upload,
)
from tests.test_privacy_logs import all_logged
from tests.test_reliability import run_worker_burst
from workers import jobs

# As SOURCES.md gives them.
EXPECTED_GPS = {
    "iphone6_gps.jpg": (40.446972, -3.724753),
    "iphone11promax_gps.heic": (39.051344, -94.288772),
    "galaxyS7_gps_app13.jpg": (51.025, 7.591944),
    "nikon_d70s_gps_serial_iptc.jpg": (43.785594, 11.234619),
}
WITHOUT_GPS = sorted(set(ACCEPTED_PHOTOS) - set(EXPECTED_GPS))
# Old enough for the sweep (it deletes orphans older than an hour).
TWO_HOURS_S = 2 * 3600


def accept(client, name: str, report: Reported | None = None) -> tuple[Reported, str]:
    """Upload a shared test photo to a (new) report; returns the report and the photo id."""
    report = report or new_report(client)
    response = upload(client, report, photo_bytes(name), filename=name)
    assert response.status_code == 202, response.get_data(as_text=True)
    return report, response.get_json()["id"]


def process(app, photo_id: str) -> str:
    """Run the processing job in-process, as a worker would (one attempt)."""
    with app.app_context():
        return jobs.process_photo(photo_id)


def photo_row(app, photo_id: str) -> Photo:
    with app.app_context():
        db.session.expire_all()
        row = db.session.get(Photo, uuid.UUID(photo_id))
        db.session.expunge(row)
        return row


def stored_copy(app, key: str) -> bytes:
    with LocalStorage(media_root(app)).open(key) as fh:
        return fh.read()


def status_photos(client, report: Reported) -> list[dict]:
    response = client.get(STATUS_URL.format(report.id),
                          headers={"X-Report-Receipt": report.receipt})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["photos"]


def age(path: Path, seconds: float) -> None:
    """Make a file look `seconds` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


# --------------------------------------------------------------------------------------------
# A processed photo


@pytest.mark.parametrize("name", ACCEPTED_PHOTOS)
def test_processed_photo_is_ready_with_two_bare_copies_and_no_original(app, client, name):
    _, photo_id = accept(client, name)
    [raw] = quarantined(app)
    assert process(app, photo_id) == "done"
    row = photo_row(app, photo_id)
    assert row.status == PhotoStatus.READY.value and row.reject_reason is None
    assert row.quarantine_key is None and not raw.exists()
    assert quarantined(app) == []
    assert len(stored_media(app)) == 2
    secrets = [*gps_rational_bytes(photo(name)), *device_secrets(photo(name))]
    display = assert_bare_jpeg(stored_copy(app, row.display_key), secrets)
    thumb = assert_bare_jpeg(stored_copy(app, row.thumb_key), secrets)
    assert display.size == (row.width, row.height)
    assert max(display.size) <= 2048
    assert max(thumb.size) <= 320


def test_stored_copies_are_private_to_the_service(app, client):
    _, photo_id = accept(client, "exif_chunk.png")
    process(app, photo_id)
    root = media_root(app) / "media"
    files = stored_media(app)
    assert len(files) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for directory in path.relative_to(root).parents:
            assert stat.S_IMODE((root / directory).stat().st_mode) == 0o700


@pytest.mark.parametrize("name", sorted(EXPECTED_GPS))
def test_gps_of_a_geotagged_photo_is_kept_for_analysts(app, client, name):
    _, photo_id = accept(client, name)
    process(app, photo_id)
    with app.app_context():
        point = func.geometry(Photo.gps_location)
        lat, lon = db.session.execute(
            select(func.ST_Y(point), func.ST_X(point)).where(Photo.id == uuid.UUID(photo_id))
        ).one()
    expected_lat, expected_lon = EXPECTED_GPS[name]
    assert lat == pytest.approx(expected_lat, abs=1e-4)
    assert lon == pytest.approx(expected_lon, abs=1e-4)


@pytest.mark.parametrize("name", WITHOUT_GPS)
def test_photo_without_gps_gets_no_position(app, client, name):
    _, photo_id = accept(client, name)
    process(app, photo_id)
    row = photo_row(app, photo_id)
    assert row.status == PhotoStatus.READY.value
    assert row.gps_location is None


@pytest.mark.parametrize("name", ACCEPTED_PHOTOS)
def test_photo_row_holds_no_device_data(app, client, name):
    _, photo_id = accept(client, name)
    process(app, photo_id)
    assert photo_row(app, photo_id).status == PhotoStatus.READY.value
    values = row_as_bytes(app, photo_id)
    for needle in (*FORBIDDEN_BYTES, *device_secrets(photo(name))):
        for value in values:
            assert needle not in value, f"{needle!r} stored in the photo's row"
            assert needle.lower() not in value.lower(), f"{needle!r} stored in the photo's row"


def grey_small(image: Image.Image) -> Image.Image:
    return image.convert("L").resize((96, 64), Image.Resampling.BOX)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def test_photo_stored_turned_comes_out_upright(app, client):
    report, upright_id = accept(client, "orientation_1.jpg")
    _, turned_id = accept(client, "orientation_6.jpg", report)
    process(app, upright_id)
    process(app, turned_id)
    upright_row, turned_row = photo_row(app, upright_id), photo_row(app, turned_id)
    with (
        Image.open(io.BytesIO(stored_copy(app, upright_row.display_key))) as upright,
        Image.open(io.BytesIO(stored_copy(app, turned_row.display_key))) as turned,
    ):
        assert turned.size == upright.size
        a, b = grey_small(upright), grey_small(turned)
    assert mean_difference(a, b) < 8
    assert mean_difference(a, a.rotate(180)) > 8  # the comparison can tell a turned picture


# --------------------------------------------------------------------------------------------
# What the reporter sees


def test_status_shows_processing_then_ready(app, client):
    report, photo_id = accept(client, "exif_chunk.png")
    assert status_photos(client, report) == [
        {"id": photo_id, "status": "processing", "reason": None}
    ]
    process(app, photo_id)
    assert status_photos(client, report) == [{"id": photo_id, "status": "ready", "reason": None}]


def test_original_damaged_in_quarantine_is_rejected_in_processing(app, client):
    # The upload passed every check; the stored original was cut short afterwards (a disk
    # fault). Processing decodes it again and must reject it, not store half a picture.
    report, photo_id = accept(client, "orientation_1.jpg")
    [raw] = quarantined(app)
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    assert process(app, photo_id) == "done"
    row = photo_row(app, photo_id)
    assert (row.status, row.reject_reason) == ("rejected", "truncated")
    assert row.display_key is None and row.thumb_key is None
    assert quarantined(app) == [] and stored_media(app) == []
    assert status_photos(client, report) == [
        {"id": photo_id, "status": "rejected", "reason": "truncated"}
    ]


def test_original_missing_from_quarantine_is_rejected(app, client):
    report, photo_id = accept(client, "exif_chunk.png")
    [raw] = quarantined(app)
    raw.unlink()
    assert process(app, photo_id) == "done"
    assert status_photos(client, report) == [
        {"id": photo_id, "status": "rejected", "reason": "original_missing"}
    ]
    assert photo_row(app, photo_id).quarantine_key is None


# --------------------------------------------------------------------------------------------
# Retries and failure


def test_processing_twice_does_no_harm(app, client):
    _, photo_id = accept(client, "exif_chunk.png")
    assert process(app, photo_id) == "done"
    first = photo_row(app, photo_id)
    assert process(app, photo_id) == "nothing to do"
    again = photo_row(app, photo_id)
    assert (again.status, again.attempts, again.processed_at, again.display_key) == (
        first.status, first.attempts, first.processed_at, first.display_key
    )
    assert len(stored_media(app)) == 2


def test_processing_that_keeps_failing_is_rejected_after_the_last_attempt(app, client):
    # A real storage fault, no mock: a regular file stands where the media directory should
    # be, so writing a copy raises NotADirectoryError (chmod would not stop root).
    _, photo_id = accept(client, "exif_chunk.png")
    [raw] = quarantined(app)
    media_dir = media_root(app) / "media"
    shutil.rmtree(media_dir)
    media_dir.write_bytes(b"")
    for attempt in range(1, media.MAX_ATTEMPTS):
        with pytest.raises(NotADirectoryError):
            process(app, photo_id)  # raised for RQ to retry
        row = photo_row(app, photo_id)
        assert (row.status, row.attempts) == ("processing", attempt)
        assert raw.exists() and row.quarantine_key == raw.name  # kept for the next attempt
    assert process(app, photo_id) == "done"
    row = photo_row(app, photo_id)
    assert (row.status, row.reject_reason) == ("rejected", "processing_failed")
    assert row.attempts == media.MAX_ATTEMPTS
    assert row.last_error == "NotADirectoryError"
    assert row.quarantine_key is None
    assert not raw.exists() and quarantined(app) == []


def test_job_queued_again_past_the_attempt_limit_rejects_the_photo(app, client):
    # A photo that kills its worker is re-queued by the reconciler; attempts keep counting.
    _, photo_id = accept(client, "exif_chunk.png")
    with app.app_context():
        db.session.execute(
            update(Photo).where(Photo.id == uuid.UUID(photo_id))
            .values(attempts=media.MAX_ATTEMPTS)
        )
        db.session.commit()
    assert process(app, photo_id) == "done"
    row = photo_row(app, photo_id)
    assert (row.status, row.reject_reason) == ("rejected", "processing_failed")
    assert quarantined(app) == [] and stored_media(app) == []


LOG_CANARIES = ("Canary", "40.4469", "-3.7247", "iPhone", "Apple")


def assert_not_logged(caplog, canaries) -> None:
    logged = all_logged(caplog)
    for canary in canaries:
        assert canary not in logged, f"{canary!r} reached the logs"


def test_processing_and_its_failure_log_nothing_about_the_photo(app, client, caplog):
    caplog.set_level(logging.INFO)  # what the worker runs at
    report = new_report(client)
    response = upload(client, report, photo_bytes("iphone6_gps.jpg"), filename="Canary St.jpg")
    assert response.status_code == 202
    photo_id = response.get_json()["id"]
    media_dir = media_root(app) / "media"
    shutil.rmtree(media_dir)
    media_dir.write_bytes(b"")  # every attempt fails, and the last one is logged
    for _ in range(1, media.MAX_ATTEMPTS):
        with pytest.raises(OSError):
            process(app, photo_id)
    assert process(app, photo_id) == "done"
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
    assert_not_logged(caplog, (report.receipt, *LOG_CANARIES))


def test_debug_logging_records_nothing_of_the_photos_exif(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    _, photo_id = accept(client, "iphone6_gps.jpg")
    process(app, photo_id)
    assert_not_logged(caplog, LOG_CANARIES)


# --------------------------------------------------------------------------------------------
# A real worker process


def test_real_worker_process_makes_the_photo_ready(
    committed_app, migrated_database, redis_conn, monkeypatch
):
    # The worker builds its app from the environment: same media root as the API's.
    monkeypatch.setenv("MEDIA_ROOT", str(media_root(committed_app)))
    client = committed_app.test_client()
    _, photo_id = accept(client, "nikon_d70s_gps_serial_iptc.jpg")
    assert media_job_ids(redis_conn) == [f"process-photo-{photo_id}"]
    run_worker_burst(migrated_database)
    row = photo_row(committed_app, photo_id)
    assert row.status == PhotoStatus.READY.value, (row.reject_reason, row.last_error)
    assert quarantined(committed_app) == []
    assert len(stored_media(committed_app)) == 2
    assert media_job_ids(redis_conn) == []


# --------------------------------------------------------------------------------------------
# The reconciler and the quarantine sweep


def test_reconciler_queues_a_photo_accepted_while_redis_was_down(
    make_app, committed_app, redis_conn
):
    offline = make_app(REDIS_URL=DEAD_REDIS_URL).test_client()
    _, photo_id = accept(offline, "exif_chunk.png")
    assert media_job_ids(redis_conn) == []
    with committed_app.app_context():
        db.session.execute(
            update(Photo).values(created_at=func.now() - text("interval '10 minutes'"))
        )
        db.session.commit()
        assert jobs.reconcile() == 1
        assert jobs.reconcile() == 0  # queued already: not sent twice
    assert media_job_ids(redis_conn) == [f"process-photo-{photo_id}"]
    assert Queue("media", connection=redis_conn).count == 1


def test_reconciler_leaves_a_fresh_photo_to_its_own_job(app, client, redis_conn):
    accept(client, "exif_chunk.png")
    redis_conn.flushdb()  # the job is lost, but the photo is younger than the grace period
    assert jobs.reconcile() == 0
    assert media_job_ids(redis_conn) == []


def orphan_upload(app, seconds_old: float) -> Path:
    """A raw upload in quarantine whose row never committed (a crash in between)."""
    store = LocalStorage(media_root(app))
    key, _ = store.quarantine_put(io.BytesIO(photo_bytes("iphone6_gps.jpg")), 20 * 2**20)
    path = Path(store.quarantine_path(key))
    age(path, seconds_old)
    return path


def test_sweep_deletes_an_old_orphaned_upload(app):
    old = orphan_upload(app, TWO_HOURS_S)
    jobs.reconcile()
    assert not old.exists()


def test_sweep_keeps_a_fresh_orphaned_upload(app):
    # It may belong to an upload whose row is about to commit.
    fresh = orphan_upload(app, 60)
    jobs.reconcile()
    assert fresh.exists()


def test_sweep_keeps_the_upload_of_a_photo_still_processing(app, client):
    _, photo_id = accept(client, "exif_chunk.png")
    [raw] = quarantined(app)
    age(raw, TWO_HOURS_S)
    jobs.reconcile()
    assert raw.exists()
    assert photo_row(app, photo_id).quarantine_key == raw.name


def test_sweep_deletes_an_old_partial_upload(app):
    quarantine = media_root(app) / "quarantine"
    LocalStorage(media_root(app))  # creates the directories
    fd, name = tempfile.mkstemp(dir=quarantine, prefix=".part-")
    with os.fdopen(fd, "wb") as out:
        out.write(photo_bytes("iphone6_gps.jpg")[:500_000])
    age(Path(name), TWO_HOURS_S)
    jobs.reconcile()
    assert not Path(name).exists()

"""No fingerprint of a reporter's original photo survives: not in the database, not in Redis.

Whoever holds the phone (or finds the photo elsewhere) can hash the original. Nothing stored
may match such a hash or the file's exact size, in any outcome: ready, rejected at upload,
rejected in processing, failed after retries. A retry is recognised by a keyed digest that is
kept only for the retry window, then erased with the idempotency key.

The dump tests commit for real and run real RQ worker processes; the rest run the job
in-process inside a rolled-back transaction, like tests/test_photo_jobs.py.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import shutil
import subprocess
import uuid
import zlib
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import make_url, select, text, update

from stopapp import create_app
from stopapp.config import Config
from stopapp.dbadmin import drop_database, recreate_database
from stopapp.extensions import db
from stopapp.media import services as media
from stopapp.media.imaging import process_image
from stopapp.media.storage import LocalStorage
from stopapp.models import Photo
from tests.conftest import DATABASE_URL, REDIS_URL, ROOT, new_key
from tests.helpers import assert_problem
from tests.media.conftest import photo
from tests.test_photo_jobs import photo_row, process, stored_copy
from tests.test_photos_api import (
    media_job_ids,
    media_root,
    new_report,
    photo_bytes,
    photos_in_db,
    quarantined,
    row_as_bytes,
    stored_media,
    upload,
)
from tests.test_reliability import run_worker_burst
from workers import jobs

WINDOW_S = Config.PHOTO_RETRY_WINDOW_S  # the default: 24 hours

# Which real photo meets which end (each original is used once, so a leak names its outcome).
READY = (
    "iphone6_gps.jpg",
    "iphone11promax_gps.heic",
    "galaxyS7_gps_app13.jpg",
    "flower_exif_makernote.webp",
    "exif_chunk.png",
    "sony_exif_xmp_iptc.heic",
    "orientation_6.jpg",
)
REJECTED_AT_UPLOAD = ("truncated.jpg", "bomb_4gpx.gif", "empty.heic")
REJECTED_IN_PROCESSING = "orientation_1.jpg"  # cut short in quarantine after it was accepted
FAILED_AFTER_RETRIES = "nikon_d70s_gps_serial_iptc.jpg"  # every attempt hits a storage fault
PAST_ATTEMPT_LIMIT = "orientation_3.jpg"  # re-queued after killing its workers


# --------------------------------------------------------------------------------------------
# What a fingerprint looks like, and where to look for one


def fingerprints(data: bytes) -> list[tuple[str, bytes, bool]]:
    """(name, needle, case-insensitive) for each plain digest of `data` in each usual spelling."""
    found = []
    for algorithm in ("sha256", "sha1", "md5"):
        digest = hashlib.new(algorithm, data).digest()
        found.append((f"{algorithm} hex", digest.hex().encode(), True))
        found.append((f"{algorithm} raw", digest, False))
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.append((f"{algorithm} base64", encode(digest).rstrip(b"="), False))
    return found


# Numbers that are not sizes and could collide with one by chance: times (ISO and epoch),
# UUIDs, hex values, fractions.
_NOT_SIZES = re.compile(
    rb"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?"
    rb"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|\\x[0-9a-f]+|[0-9a-f]{32,}|\.\d+",
    re.IGNORECASE,
)


def decimal_numbers(blob: bytes) -> set[bytes]:
    return set(re.findall(rb"\d+", _NOT_SIZES.sub(b" ", blob)))


def assert_no_fingerprint(
    blobs: dict[str, bytes], digested: dict[str, bytes], sized: dict[str, bytes] | None = None
) -> None:
    """No blob holds a plain digest of any of `digested`, nor the exact size of any of `sized`
    (by default the same files) as a number."""
    sized = digested if sized is None else sized
    for where, blob in blobs.items():
        folded = blob.lower()
        numbers = decimal_numbers(blob)
        for name, data in digested.items():
            for kind, needle, fold in fingerprints(data):
                assert needle not in (folded if fold else blob), f"{kind} of {name} in {where}"
        for name, data in sized.items():
            assert str(len(data)).encode() not in numbers, f"size of {name} in {where}"


def database_dump(database_url: str = DATABASE_URL) -> bytes:
    """`pg_dump -a` of the whole database: every row of every table.

    Uses the pg_dump of the server's own major version (another one refuses or misreads).
    """
    url = make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False
    )
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    pg_dump = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")
    assert pg_dump.exists(), f"pg_dump for PostgreSQL {major} not found at {pg_dump}"
    return subprocess.run(
        [str(pg_dump), "-a", url], capture_output=True, check=True, timeout=120
    ).stdout


def unwrapped(value: bytes) -> list[bytes]:
    """`value` and what RQ may have wrapped in it: job data is zlib-compressed, results and
    failure tracebacks are base64 (of zlib, for tracebacks)."""
    layers = [value]
    for layer in layers:
        for decode in (zlib.decompress, functools.partial(base64.b64decode, validate=True)):
            try:
                decoded = decode(layer)
            except (zlib.error, ValueError):
                continue
            if decoded and decoded not in layers and len(layers) < 8:
                layers.append(decoded)
    return layers


def redis_dump(conn) -> dict[str, bytes]:
    """Every key of the test Redis database with all its values, unwrapped."""
    dump = {}
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key).decode()
        if kind == "string":
            values = [conn.get(key)]
        elif kind == "hash":
            values = [item for pair in conn.hgetall(key).items() for item in pair]
        elif kind == "list":
            values = conn.lrange(key, 0, -1)
        elif kind == "set":
            values = list(conn.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in conn.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [item for _, fields in conn.xrange(key) for pair in fields.items()
                      for item in pair]
        else:
            raise AssertionError(f"unexpected Redis type {kind} at {key!r}")
        blobs = [key, *(layer for value in values for layer in unwrapped(value))]
        dump[key.decode(errors="replace")] = b"\n".join(blobs)
    return dump


# --------------------------------------------------------------------------------------------
# Every outcome, real workers, then a dump of everything


def age_photos(app, seconds: float, photo_id: str | None = None) -> None:
    """Move the upload time of the photos (or of one) `seconds` into the past."""
    with app.app_context():
        statement = update(Photo).values(created_at=Photo.created_at - timedelta(seconds=seconds))
        if photo_id is not None:
            statement = statement.where(Photo.id == uuid.UUID(photo_id))
        db.session.execute(statement)
        db.session.commit()


def set_attempts(app, photo_id: str, attempts: int) -> None:
    with app.app_context():
        db.session.execute(update(Photo).where(Photo.id == uuid.UUID(photo_id))
                           .values(attempts=attempts))
        db.session.commit()


def row_columns(app, photo_id: str) -> dict[str, bytes]:
    """Every column of the photo's row as stored, by position."""
    return {f"column {i}": value for i, value in enumerate(row_as_bytes(app, photo_id))}


def retry_state(app) -> list[tuple[bool, bool]]:
    """(has a digest, has an idempotency key) for every photo."""
    return [(p.upload_digest is not None, p.idempotency_key_hash is not None)
            for p in photos_in_db(app)]


def test_no_fingerprint_of_any_original_in_the_database_or_redis(
    committed_app, migrated_database, redis_conn, monkeypatch
):
    app = committed_app
    monkeypatch.setenv("MEDIA_ROOT", str(media_root(app)))
    client = app.test_client()
    originals = {}

    def send(report, name, statuses=(202,)):
        originals[name] = photo_bytes(name)
        response = upload(client, report, originals[name], filename=name)
        assert response.status_code in statuses, (name, response.get_data(as_text=True))
        return response.get_json().get("id")

    report = new_report(client)
    ready = [send(report, name) for name in READY]
    for name in REJECTED_AT_UPLOAD:
        send(report, name, statuses=(415, 422))
    other = new_report(client)
    cut = send(other, REJECTED_IN_PROCESSING)
    raw = media_root(app) / "quarantine" / photo_row(app, cut).quarantine_key
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    poison = send(other, PAST_ATTEMPT_LIMIT)
    set_attempts(app, poison, media.MAX_ATTEMPTS)
    first_worker = run_worker_burst(migrated_database)

    # A storage fault on every attempt (each one's traceback goes to the worker's log); the
    # retries run at once, so that one burst sees them all.
    media_dir = media_root(app) / "media"
    shutil.rmtree(media_dir)
    media_dir.write_bytes(b"")
    monkeypatch.setattr(media, "RETRY_INTERVALS_S", (0,) * (media.MAX_ATTEMPTS - 1))
    failed = send(other, FAILED_AFTER_RETRIES)
    second_worker = run_worker_burst(migrated_database)

    outcomes = {str(p.id): (p.status, p.reject_reason) for p in photos_in_db(app)}
    assert outcomes == {
        **{photo_id: ("ready", None) for photo_id in ready},
        cut: ("rejected", "truncated"),
        poison: ("rejected", "processing_failed"),
        failed: ("rejected", "processing_failed"),
    }
    assert photo_row(app, failed).attempts == media.MAX_ATTEMPTS
    assert quarantined(app) == []
    # Within the window every photo still has what a retry needs, keyed.
    assert retry_state(app) == [(True, True)] * len(outcomes)

    dump = database_dump()
    assert all(photo_id.encode() in dump for photo_id in outcomes)  # the rows are in it
    keys = redis_dump(redis_conn)
    # The search reaches inside RQ's encodings: the pickled results, under their base64.
    assert b"\x8c\x04done" in b"".join(keys.values())
    rebuilt = {label: copy for name in READY for label, copy in rebuilt_copies(name).items()}
    # Rejected uploads have no row for a size to stand next to (and some are 0 or 44 bytes).
    sized = {name: data for name, data in originals.items() if name not in REJECTED_AT_UPLOAD}
    assert_no_fingerprint({"pg_dump": dump, **keys}, {**originals, **rebuilt}, sized)
    # RQ logs the traceback of each failed attempt (it stores only a final failure's).
    logs = "".join(w.stdout + w.stderr for w in (first_worker, second_worker)).encode()
    assert logs.count(b"NotADirectoryError") >= media.MAX_ATTEMPTS - 1
    assert_no_fingerprint({"worker logs": logs}, originals, sized)

    # Past the window the reconciler erases the keyed digests and the keys as well.
    keyed = [p.upload_digest.hex().encode() for p in photos_in_db(app)]
    age_photos(app, WINDOW_S + 60)
    with app.app_context():
        jobs.reconcile()
    assert retry_state(app) == [(False, False)] * len(outcomes)
    dump = database_dump()
    assert not any(digest in dump for digest in keyed)


def rebuilt_copies(name: str) -> dict[str, bytes]:
    """The display copy and thumbnail anyone holding the original can rebuild with this code."""
    result = process_image(photo(name))
    return {f"display copy of {name}": result.display_jpeg,
            f"thumbnail of {name}": result.thumb_jpeg}


def test_stored_copies_are_not_named_by_a_hash_anyone_could_recompute(app, client):
    name = "orientation_8.jpg"
    photo_id = accept(client, new_report(client), photo_bytes(name), new_key())
    assert process(app, photo_id) == "done"
    row = photo_row(app, photo_id)
    copies = rebuilt_copies(name)
    # Processing is deterministic: the copy rebuilt from the original is the one stored.
    assert stored_copy(app, row.display_key) == copies[f"display copy of {name}"]
    assert_no_fingerprint(row_columns(app, photo_id), copies, sized={})


def test_copies_stored_under_plain_hashes_are_renamed(app, client, runner):
    # As copies were named before: by the SHA-256 anyone can recompute from a rebuilt copy.
    name = "orientation_8.jpg"
    photo_id = accept(client, new_report(client), photo_bytes(name), new_key())
    assert process(app, photo_id) == "done"
    unkeyed = LocalStorage(media_root(app))
    copies = list(rebuilt_copies(name).values())
    old_keys = [unkeyed.put(copy, ".jpg") for copy in copies]
    with app.app_context():
        db.session.execute(update(Photo).where(Photo.id == uuid.UUID(photo_id))
                           .values(display_key=old_keys[0], thumb_key=old_keys[1]))
        db.session.commit()
    result = runner.invoke(args=["rename-photo-copies"])
    assert result.exit_code == 0, result.output
    row = photo_row(app, photo_id)
    assert [stored_copy(app, row.display_key), stored_copy(app, row.thumb_key)] == copies
    assert not any(unkeyed.exists(key) for key in old_keys)
    assert_no_fingerprint(row_columns(app, photo_id), rebuilt_copies(name), sized={})
    assert runner.invoke(args=["rename-photo-copies"]).output == "renamed 0 stored file(s)\n"


# --------------------------------------------------------------------------------------------
# The digest is keyed


def test_upload_digest_is_keyed_not_a_plain_hash(make_app):
    data = photo_bytes("orientation_8.jpg")
    digests = []
    for key in ("first-digest-key", "second-digest-key"):
        app = make_app(PHOTO_DIGEST_KEY=key)
        client = app.test_client()
        assert upload(client, new_report(client), data).status_code == 202
        [row] = [p for p in photos_in_db(app) if p.upload_digest not in digests]
        digests.append(row.upload_digest)
    assert digests[0] != digests[1]  # another key, another digest for the same bytes
    plain = {needle for _, needle, _ in fingerprints(data)}
    assert not any(digest in plain or digest.hex().encode() in plain for digest in digests)


# --------------------------------------------------------------------------------------------
# Retries: recognised within the window, even after processing; a new photo after it


def accept(client, report, data: bytes, key: str) -> str:
    response = upload(client, report, data, key=key)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def test_retry_after_processing_within_the_window_gets_the_same_photo(app, client, redis_conn):
    report, key = new_report(client), new_key()
    data = photo_bytes("orientation_8.jpg")
    photo_id = accept(client, report, data, key)
    assert process(app, photo_id) == "done"
    redis_conn.flushdb()  # the first job is done and gone; a retry must queue nothing
    age_photos(app, WINDOW_S - 600, photo_id)  # ten minutes before the window closes
    assert accept(client, report, data, key) == photo_id
    assert [str(p.id) for p in photos_in_db(app)] == [photo_id]
    assert quarantined(app) == [] and len(stored_media(app)) == 2
    assert media_job_ids(redis_conn) == []


def test_same_key_with_other_bytes_after_processing_is_still_refused(app, client):
    report, key = new_report(client), new_key()
    photo_id = accept(client, report, photo_bytes("orientation_8.jpg"), key)
    assert process(app, photo_id) == "done"
    body = assert_problem(upload(client, report, photo_bytes("orientation_6.jpg"), key=key), 422)
    assert "Idempotency-Key" in body["errors"]
    assert [str(p.id) for p in photos_in_db(app)] == [photo_id]
    assert quarantined(app) == []


@pytest.mark.parametrize("reconciled", [True, False], ids=["reconciled", "not-yet-reconciled"])
def test_retry_after_the_window_is_a_new_photo(app, client, redis_conn, reconciled):
    report, key = new_report(client), new_key()
    data = photo_bytes("orientation_8.jpg")
    first = accept(client, report, data, key)
    assert process(app, first) == "done"
    age_photos(app, WINDOW_S + 1)
    if reconciled:
        jobs.reconcile()
        assert retry_state(app) == [(False, False)]
    second = accept(client, report, data, key)
    assert second != first
    assert [str(p.id) for p in photos_in_db(app)] == [first, second]
    # The old photo has nothing left to match; the new one starts its own window.
    assert photo_row(app, first).upload_digest is None
    assert photo_row(app, second).upload_digest is not None
    assert media_job_ids(redis_conn)[-1] == f"process-photo-{second}"


def test_reconciler_leaves_digests_within_the_window(app, client):
    photo_id = accept(client, new_report(client), photo_bytes("orientation_8.jpg"), new_key())
    process(app, photo_id)
    age_photos(app, WINDOW_S - 600)
    jobs.reconcile()
    assert retry_state(app) == [(True, True)]


def test_retry_window_is_a_setting(make_app):
    app = make_app(PHOTO_RETRY_WINDOW_S=60)
    client = app.test_client()
    report, key = new_report(client), new_key()
    data = photo_bytes("orientation_8.jpg")
    first = accept(client, report, data, key)
    age_photos(app, 61)
    assert accept(client, report, data, key) != first


# --------------------------------------------------------------------------------------------
# Processing that ends after the window erases at once, in every outcome


def end_ready(app, photo_id):
    assert process(app, photo_id) == "done"


def end_rejected(app, photo_id):
    raw = media_root(app) / "quarantine" / photo_row(app, photo_id).quarantine_key
    raw.write_bytes(raw.read_bytes()[:500])
    assert process(app, photo_id) == "done"


def end_failed_after_retries(app, photo_id):
    media_dir = media_root(app) / "media"
    shutil.rmtree(media_dir)
    media_dir.write_bytes(b"")
    for _ in range(1, media.MAX_ATTEMPTS):
        with pytest.raises(NotADirectoryError):
            process(app, photo_id)
    assert process(app, photo_id) == "done"


def end_past_attempt_limit(app, photo_id):
    set_attempts(app, photo_id, media.MAX_ATTEMPTS)
    assert process(app, photo_id) == "done"


@pytest.mark.parametrize(
    ("end", "outcome"),
    [
        (end_ready, ("ready", None)),
        (end_rejected, ("rejected", "truncated")),
        (end_failed_after_retries, ("rejected", "processing_failed")),
        (end_past_attempt_limit, ("rejected", "processing_failed")),
    ],
    ids=["ready", "rejected-in-processing", "failed-after-retries", "past-attempt-limit"],
)
def test_processing_ending_after_the_window_erases_the_digest(app, client, end, outcome):
    photo_id = accept(client, new_report(client), photo_bytes("orientation_8.jpg"), new_key())
    age_photos(app, WINDOW_S + 1, photo_id)
    end(app, photo_id)
    row = photo_row(app, photo_id)
    assert (row.status, row.reject_reason) == outcome
    assert (row.upload_digest, row.idempotency_key_hash) == (None, None)


@pytest.mark.parametrize("end", [end_ready, end_rejected], ids=["ready", "rejected"])
def test_processing_within_the_window_keeps_only_the_keyed_digest(app, client, end):
    data = photo_bytes("orientation_8.jpg")
    photo_id = accept(client, new_report(client), data, new_key())
    end(app, photo_id)
    assert photo_row(app, photo_id).upload_digest is not None
    assert_no_fingerprint(row_columns(app, photo_id), {"orientation_8.jpg": data})


def test_no_photo_keeps_a_digest_past_the_window(app, client):
    # What the reconciler leaves behind, whatever the mix of ages and states.
    report = new_report(client)
    ids = [accept(client, report, photo_bytes(name), new_key())
           for name in ("orientation_8.jpg", "orientation_6.jpg", "exif_chunk.png")]
    process(app, ids[0])
    age_photos(app, WINDOW_S + 1, ids[0])
    age_photos(app, WINDOW_S + 1, ids[1])  # still processing: bounded all the same
    jobs.reconcile()
    with app.app_context():
        kept = db.session.scalars(select(Photo.id).where(Photo.upload_digest.is_not(None)))
        assert [str(i) for i in kept] == [ids[2]]


# --------------------------------------------------------------------------------------------
# The migration erases what was stored before it

REVISION = "i11_photo_digest"


@pytest.fixture
def database_before_migration(migrated_database):
    """A scratch database migrated to just before REVISION, holding one photo as the old code
    stored it (plain SHA-256, byte count and format of iphone6_gps.jpg); yields its app."""
    base = make_url(DATABASE_URL)
    scratch = base.set(database=f"{base.database}_{REVISION}").render_as_string(
        hide_password=False
    )
    recreate_database(scratch)
    app = create_app({"DATABASE_URL": scratch, "REDIS_URL": REDIS_URL})
    before = ScriptDirectory(str(ROOT / "migrations")).get_revision(REVISION).down_revision
    data = photo_bytes("iphone6_gps.jpg")
    try:
        with app.app_context():
            upgrade(revision=before)
            report_id = uuid.uuid4()
            db.session.execute(
                text(
                    "INSERT INTO reports (id, reference, idempotency_key_hash, request_hash,"
                    " receipt_hash, description, exploitation_types, place, occurred_precision,"
                    " ongoing, state, version) VALUES (:id, 'R-2026-000001', :h, :h, :h,"
                    " 'Seen at the car wash.', '{labour}', 'King Street', 'exact', false,"
                    " 'new', 1)"
                ),
                {"id": report_id, "h": hashlib.sha256(b"report").digest()},
            )
            db.session.execute(
                text(
                    "INSERT INTO photos (id, report_id, idempotency_key_hash, upload_sha256,"
                    " upload_bytes, detected_format, status, attempts) VALUES (:id, :report,"
                    " :key, :sha, :size, 'jpeg', 'ready', 1)"
                ),
                {"id": uuid.uuid4(), "report": report_id, "key": hashlib.sha256(b"key").digest(),
                 "sha": hashlib.sha256(data).digest(), "size": len(data)},
            )
            db.session.commit()
            yield app, scratch, before
            db.session.remove()
            db.engine.dispose()
    finally:
        drop_database(scratch)


def test_migration_erases_the_plain_digests_and_sizes_already_stored(database_before_migration):
    app, scratch, before = database_before_migration
    data = photo_bytes("iphone6_gps.jpg")
    assert hashlib.sha256(data).hexdigest().encode() in database_dump(scratch)  # the check bites
    upgrade(revision=REVISION)
    [row] = db.session.execute(text("SELECT * FROM photos")).mappings().all()
    assert {"upload_sha256", "upload_bytes", "detected_format"}.isdisjoint(row)
    # Old uploads cannot be compared any more: their keys are released with them.
    assert (row["upload_digest"], row["idempotency_key_hash"]) == (None, None)
    assert_no_fingerprint({"pg_dump": database_dump(scratch)}, {"iphone6_gps.jpg": data})
    db.session.commit()
    downgrade(revision=before)
    [row] = db.session.execute(text("SELECT * FROM photos")).mappings().all()
    assert (bytes(row["upload_sha256"]), row["upload_bytes"]) == (bytes(32), 0)
    assert row["idempotency_key_hash"] is not None


def table_file(table: str) -> Path | None:
    """The file holding `table`'s rows, once written out; None if this process cannot read
    the server's data directory (a server on another host or user)."""
    db.session.execute(text("CHECKPOINT"))
    directory = db.session.scalar(text("SHOW data_directory"))
    path = Path(directory) / db.session.scalar(text(f"SELECT pg_relation_filepath('{table}')"))
    try:
        path.read_bytes()
    except OSError:
        return None
    return path


def test_migration_leaves_no_dropped_digest_in_the_table_file(database_before_migration):
    # DROP COLUMN alone only hides values: they stay on disk until each row is rewritten.
    app, _, _ = database_before_migration
    digest = hashlib.sha256(photo_bytes("iphone6_gps.jpg")).digest()
    before = table_file("photos")
    if before is None:
        pytest.skip("the database server's files are not readable from here")
    assert digest in before.read_bytes()  # the check bites
    upgrade(revision=REVISION)
    db.session.commit()
    assert digest not in table_file("photos").read_bytes()

"""POST /api/v1/reports/{id}/photos through the test client (and once through a real server).

Reporter safety is what these tests guard: whatever the answer, a refused upload leaves no
Photo row and no raw file behind (neither in quarantine nor in the media store), and a body
is never read before the receipt has been checked.
"""

from __future__ import annotations

import functools
import gc
import http.client
import io
import random
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from rq import Queue
from sqlalchemy import select, text
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder, stream_encode_multipart

from stopapp.constants import PhotoStatus
from stopapp.extensions import db
from stopapp.models import Photo
from tests.conftest import new_key, submit
from tests.helpers import assert_problem
from tests.media.conftest import ACCEPTED_PHOTOS, photo
from workers import jobs

PHOTOS_URL = "/api/v1/reports/{}/photos"
STATUS_URL = "/api/v1/reports/{}/status"
MISSING = object()  # "send no such header"
# A small limit for the size tests, so that "too large" costs a few hundred kilobytes.
SMALL_MAX_BYTES = 200_000


# --------------------------------------------------------------------------------------------
# Helpers (test_photo_jobs.py imports these too)


@dataclass(frozen=True)
class Reported:
    """A report made through POST /api/v1/reports: its id and the reporter's receipt."""

    id: str
    receipt: str


def new_report(client) -> Reported:
    response = submit(client)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    return Reported(body["id"], body["receipt"])


def photo_headers(report: Reported, key: object = None, receipt: object = None) -> dict:
    """The upload headers; MISSING leaves a header out."""
    headers = {
        "X-Report-Receipt": report.receipt if receipt is None else receipt,
        "Idempotency-Key": new_key() if key is None else key,
    }
    return {name: value for name, value in headers.items() if value is not MISSING}


def upload(
    client,
    report: Reported,
    data: bytes,
    *,
    key: object = None,
    receipt: object = None,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **kwargs,
):
    """POST one file in the field `photo`, as the app does."""
    return post_form(
        client, report.id, {"photo": (io.BytesIO(data), filename, content_type)},
        photo_headers(report, key, receipt), **kwargs,
    )


def multipart_body(fields: dict) -> tuple[bytes, str]:
    """The encoded multipart body of `fields` and its Content-Type (with the boundary).

    Encoded in memory: the test client would spool a large body to a temporary file that
    only closing the response closes.
    """
    builder = EnvironBuilder(method="POST", data=fields)
    try:
        stream, _, boundary = stream_encode_multipart(
            CombinedMultiDict([builder.form, builder.files]), use_tempfile=False
        )
    finally:
        builder.close()
    return stream.getvalue(), f'multipart/form-data; boundary="{boundary}"'


def post_form(client, report_id: str, fields: dict, headers: dict, **kwargs):
    body, content_type = multipart_body(fields)
    return client.post(
        PHOTOS_URL.format(report_id),
        input_stream=io.BytesIO(body),
        headers={**headers, "Content-Type": content_type},
        **kwargs,
    )


class CountingStream(io.BytesIO):
    """A request body that counts how many of its bytes the server read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def read1(self, size: int = -1) -> bytes:
        chunk = super().read1(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


def media_root(app) -> Path:
    return Path(app.extensions["stopapp.config"].MEDIA_ROOT)


def files_under(path: Path) -> list[Path]:
    """Every regular file below `path`, partial uploads included (none if it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def quarantined(app) -> list[Path]:
    return files_under(media_root(app) / "quarantine")


def stored_media(app) -> list[Path]:
    return files_under(media_root(app) / "media")


def photos_in_db(app) -> list[Photo]:
    """Every Photo row, read afresh."""
    with app.app_context():
        db.session.expire_all()
        rows = list(db.session.scalars(select(Photo).order_by(Photo.created_at)))
        db.session.expunge_all()
        return rows


def row_as_bytes(app, photo_id: str) -> list[bytes]:
    """Every column of the photo's row as stored (columns added later included)."""
    with app.app_context():
        row = db.session.execute(
            text("SELECT * FROM photos WHERE id = :id"), {"id": uuid.UUID(photo_id)}
        ).one()
    values = []
    for value in row:
        if isinstance(value, bytes | bytearray | memoryview):
            values.append(bytes(value))
        elif value is not None:
            values.append(str(value).encode())
    return values


def assert_nothing_kept(app) -> None:
    """No Photo row, no raw upload in quarantine, nothing in the media store."""
    assert photos_in_db(app) == []
    assert quarantined(app) == []
    assert stored_media(app) == []


def media_job_ids(redis_conn) -> list[str]:
    return Queue("media", connection=redis_conn).job_ids


@functools.cache
def photo_bytes(name: str) -> bytes:
    return photo(name).read_bytes()


def tiny_jpeg(seed: int) -> bytes:
    """A small valid JPEG whose bytes differ with `seed`."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (24, 16), rng.randbytes(24 * 16 * 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def jpeg_padded_to(size: int) -> bytes:
    """A valid JPEG followed by zeros after its end marker, exactly `size` bytes long."""
    data = tiny_jpeg(7)
    assert len(data) < size
    return data + b"\x00" * (size - len(data))


@functools.cache
def png_over_sixty_megapixels() -> bytes:
    """An 8000x7600 (60.8 MP) PNG of one colour: a few kilobytes on disk."""
    buffer = io.BytesIO()
    Image.new("1", (8000, 7600), 1).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header was rewritten to claim width x height."""
    data = bytearray(tiny_jpeg(3))
    sof = data.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2).
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def webp_canvas_claiming(width: int, height: int) -> bytes:
    """An extended WebP header (VP8X) announcing a width x height canvas, with no pixels."""
    payload = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + len(payload).to_bytes(4, "little") + payload
    return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk


def garbage_behind_jpeg_signature() -> bytes:
    return b"\xff\xd8\xff" + random.Random(11).randbytes(4000)


# --------------------------------------------------------------------------------------------
# Accepted uploads


@pytest.mark.parametrize("name", ACCEPTED_PHOTOS)
def test_real_photo_is_accepted_quarantined_and_queued(app, client, redis_conn, name):
    report = new_report(client)
    data = photo_bytes(name)
    response = upload(client, report, data, filename=name)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"id", "status"} and body["status"] == "processing"
    [row] = photos_in_db(app)
    assert str(row.id) == body["id"] and str(row.report_id) == report.id
    assert row.status == PhotoStatus.PROCESSING.value
    [raw] = quarantined(app)
    assert raw.name == row.quarantine_key
    assert raw.read_bytes() == data
    assert stored_media(app) == []
    assert media_job_ids(redis_conn) == [f"process-photo-{body['id']}"]


def test_quarantined_upload_is_private_to_the_service(app, client):
    assert upload(client, new_report(client), photo_bytes("orientation_1.jpg")).status_code == 202
    [raw] = quarantined(app)
    assert stat.S_IMODE(raw.stat().st_mode) == 0o600
    assert stat.S_IMODE(raw.parent.stat().st_mode) == 0o700


def test_type_is_judged_by_content_not_by_name_or_declared_type(app, client):
    response = upload(client, new_report(client), photo_bytes("orientation_1.jpg"),
                      filename="x.gif", content_type="text/plain")
    assert response.status_code == 202, response.get_data(as_text=True)
    assert jobs.process_photo(response.get_json()["id"]) == "done"
    assert [p.status for p in photos_in_db(app)] == [PhotoStatus.READY.value]


def test_uploaded_file_name_and_declared_type_are_stored_nowhere(app, client):
    # Phones name files after people and places; only the pixels may be kept.
    response = upload(client, new_report(client), photo_bytes("exif_chunk.png"),
                      filename="Maria Canary at 12 King Street.png",
                      content_type="image/x-canary-type")
    assert response.status_code == 202
    values = row_as_bytes(app, response.get_json()["id"])
    assert not any(b"Canary" in value or b"canary" in value for value in values)
    assert not any("Canary" in path.name for path in quarantined(app))


# --------------------------------------------------------------------------------------------
# Refused uploads: nothing is kept


def test_gif_named_jpeg_is_unsupported(app, client):
    response = upload(client, new_report(client), photo_bytes("bomb_4gpx.gif"),
                      filename="x.jpg", content_type="image/jpeg")
    body = assert_problem(response, 415)
    assert body["errors"] == {"photo": ["unsupported_type"]}
    assert_nothing_kept(app)


def test_text_named_jpeg_is_unsupported(app, client):
    response = upload(client, new_report(client), b"Meet at the car wash at nine.\n" * 40,
                      filename="evidence.jpg", content_type="image/jpeg")
    body = assert_problem(response, 415)
    assert body["errors"] == {"photo": ["unsupported_type"]}
    assert_nothing_kept(app)


HOSTILE = {
    "truncated.jpg": (lambda: photo_bytes("truncated.jpg"), "truncated"),
    "empty.heic": (lambda: photo_bytes("empty.heic"), "empty"),
    "png_60.8_megapixels": (png_over_sixty_megapixels, "too_many_pixels"),
    "jpeg_header_claiming_65000x65000": (
        lambda: jpeg_claiming(65000, 65000), "decompression_bomb"
    ),
    "webp_header_claiming_16384x16384": (
        lambda: webp_canvas_claiming(16384, 16384), "too_many_pixels"
    ),
    "garbage_behind_jpeg_signature": (garbage_behind_jpeg_signature, "undecodable"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_refused_and_nothing_is_kept(app, client, redis_conn, case):
    make, code = HOSTILE[case]
    response = upload(client, new_report(client), make(), filename=case)
    body = assert_problem(response, 422)
    assert body["errors"] == {"photo": [code]}
    assert_nothing_kept(app)
    assert media_job_ids(redis_conn) == []


# --------------------------------------------------------------------------------------------
# Size


# When the body limit stops Werkzeug's multipart parser mid-file, the parser drops the part it
# was filling without closing it (a SpooledTemporaryFile: memory, or an already-unlinked file
# past 500 KB, so nothing of it can be found on disk). Garbage collection frees it with a
# ResourceWarning; that one warning, from Werkzeug and not the app, is let through here.
WERKZEUG_UNCLOSED_PART = pytest.mark.filterwarnings(
    "ignore:Unclosed file <tempfile.SpooledTemporaryFile:ResourceWarning"
)


@pytest.fixture
def small_limit_app(make_app):
    return make_app(MAX_PHOTO_BYTES=SMALL_MAX_BYTES)


def test_declared_length_over_the_limit_is_413_before_the_body_is_read(small_limit_app):
    client = small_limit_app.test_client()
    report = new_report(client)
    body, content_type = multipart_body(
        {"photo": (io.BytesIO(jpeg_padded_to(300_000)), "big.jpg", "image/jpeg")}
    )
    stream = CountingStream(body)
    response = client.post(
        PHOTOS_URL.format(report.id),
        input_stream=stream,
        headers={**photo_headers(report), "Content-Type": content_type,
                 "Content-Length": str(len(body))},
    )
    assert_problem(response, 413)
    assert stream.bytes_read == 0
    assert_nothing_kept(small_limit_app)


@WERKZEUG_UNCLOSED_PART
def test_streamed_body_without_length_over_the_limit_is_413(small_limit_app):
    # A server that de-chunks (werkzeug's, gunicorn) marks the stream as terminated; there is
    # no Content-Length, so the limit can only act while the body streams in.
    client = small_limit_app.test_client()
    report = new_report(client)
    body, content_type = multipart_body(
        {"photo": (io.BytesIO(jpeg_padded_to(300_000)), "big.jpg", "image/jpeg")}
    )
    stream = CountingStream(body)
    response = client.post(
        PHOTOS_URL.format(report.id),
        input_stream=stream,
        headers={**photo_headers(report), "Content-Type": content_type,
                 "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_problem(response, 413)
    assert stream.bytes_read < len(body)  # it stopped at the limit
    assert_nothing_kept(small_limit_app)
    gc.collect()  # the dropped part goes now, while the filter above applies


def test_photo_of_exactly_the_limit_is_accepted(small_limit_app):
    client = small_limit_app.test_client()
    response = upload(client, new_report(client), jpeg_padded_to(SMALL_MAX_BYTES))
    assert response.status_code == 202, response.get_data(as_text=True)


def test_photo_one_byte_over_the_limit_is_413_and_not_kept(small_limit_app):
    # Within the allowance for the multipart framing, so the service's own count refuses it.
    client = small_limit_app.test_client()
    response = upload(client, new_report(client), jpeg_padded_to(SMALL_MAX_BYTES + 1))
    body = assert_problem(response, 413)
    assert body["errors"] == {"photo": ["too_large"]}
    assert_nothing_kept(small_limit_app)


@WERKZEUG_UNCLOSED_PART
@pytest.mark.parametrize(
    "size",
    [SMALL_MAX_BYTES + 50_000, SMALL_MAX_BYTES + 100_000],
    ids=["over_the_photo_limit", "over_the_body_limit"],
)
def test_chunked_upload_to_a_real_server_over_the_limit_is_413(small_limit_app, size):
    report = new_report(small_limit_app.test_client())
    body, content_type = multipart_body(
        {"photo": (io.BytesIO(jpeg_padded_to(size)), "big.jpg", "image/jpeg")}
    )
    server = make_server("127.0.0.1", 0, small_limit_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        connection.request(
            "POST",
            PHOTOS_URL.format(report.id),
            body=(body[i : i + 16384] for i in range(0, len(body), 16384)),
            encode_chunked=True,
            headers={**photo_headers(report), "Content-Type": content_type,
                     "Transfer-Encoding": "chunked"},
        )
        response = connection.getresponse()
        status, mimetype = response.status, response.getheader("Content-Type")
        response.read()
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert (status, mimetype) == (413, "application/problem+json")
    assert_nothing_kept(small_limit_app)
    gc.collect()


# --------------------------------------------------------------------------------------------
# Ten photos a report


def fill_report(client, report: Reported, count: int = 10) -> list[str]:
    ids = []
    for seed in range(count):
        response = upload(client, report, tiny_jpeg(seed))
        assert response.status_code == 202, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    return ids


def test_eleventh_photo_is_409_and_not_kept(app, client, redis_conn):
    report = new_report(client)
    fill_report(client, report)
    response = upload(client, report, tiny_jpeg(100))
    assert_problem(response, 409)
    assert len(photos_in_db(app)) == 10
    assert len(quarantined(app)) == 10
    assert len(media_job_ids(redis_conn)) == 10


def test_rejected_photos_do_not_count_toward_the_ten(app, client):
    report = new_report(client)
    ids = fill_report(client, report)
    # One of them is rejected in processing: its stored original turned out cut short.
    raw = media_root(app) / "quarantine" / photos_in_db(app)[0].quarantine_key
    raw.write_bytes(raw.read_bytes()[:200])
    assert jobs.process_photo(ids[0]) == "done"
    assert [p.status for p in photos_in_db(app)].count(PhotoStatus.REJECTED.value) == 1
    assert upload(client, report, tiny_jpeg(100)).status_code == 202
    assert_problem(upload(client, report, tiny_jpeg(101)), 409)


def test_concurrent_uploads_cannot_overfill_a_report(committed_app):
    client = committed_app.test_client()
    report = new_report(client)
    fill_report(client, report, 8)
    statuses = run_together(
        committed_app, [lambda c, seed=seed: upload(c, report, tiny_jpeg(seed)) for seed in
                        range(20, 24)]
    )
    assert sorted(statuses) == [202, 202, 409, 409]
    assert len(photos_in_db(committed_app)) == 10
    assert len(quarantined(committed_app)) == 10


def test_concurrent_retries_with_one_key_keep_one_photo_and_one_file(committed_app):
    client = committed_app.test_client()
    report = new_report(client)
    key = new_key()
    statuses = run_together(
        committed_app, [lambda c: upload(c, report, tiny_jpeg(5), key=key)] * 6
    )
    assert statuses == [202] * 6
    assert len(photos_in_db(committed_app)) == 1
    assert len(quarantined(committed_app)) == 1


def run_together(app, calls) -> list[int]:
    """Send the requests from as many threads at once; returns their status codes."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = []

    def send(call):
        with app.test_client() as client:
            barrier.wait()
            statuses.append(call(client).status_code)

    threads = [threading.Thread(target=send, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == len(calls)
    return statuses


def test_retry_of_an_accepted_photo_on_a_full_report_repeats_its_answer(app, client):
    report = new_report(client)
    key = new_key()
    first = upload(client, report, tiny_jpeg(0), key=key)
    for seed in range(1, 10):
        assert upload(client, report, tiny_jpeg(seed)).status_code == 202
    retry = upload(client, report, tiny_jpeg(0), key=key)
    assert retry.status_code == 202
    assert retry.get_json() == first.get_json()
    assert len(photos_in_db(app)) == 10


# --------------------------------------------------------------------------------------------
# Idempotency


def test_retry_with_the_same_key_and_bytes_returns_the_same_photo(app, client, redis_conn):
    report = new_report(client)
    key = new_key()
    data = photo_bytes("exif_chunk.png")
    first = upload(client, report, data, key=key)
    retry = upload(client, report, data, key=key)
    assert first.status_code == retry.status_code == 202
    assert retry.get_json() == first.get_json()
    assert len(photos_in_db(app)) == 1
    assert len(quarantined(app)) == 1
    assert media_job_ids(redis_conn) == [f"process-photo-{first.get_json()['id']}"]


def test_same_key_with_other_bytes_is_422_and_nothing_new_is_kept(app, client):
    report = new_report(client)
    key = new_key()
    first = upload(client, report, tiny_jpeg(1), key=key)
    assert first.status_code == 202
    [raw] = quarantined(app)
    body = assert_problem(upload(client, report, tiny_jpeg(2), key=key), 422)
    assert "Idempotency-Key" in body["errors"]
    assert [str(p.id) for p in photos_in_db(app)] == [first.get_json()["id"]]
    assert quarantined(app) == [raw]
    assert raw.read_bytes() == tiny_jpeg(1)


def test_same_key_on_another_report_is_another_photo(app, client):
    key = new_key()
    first = upload(client, new_report(client), tiny_jpeg(1), key=key)
    second = upload(client, new_report(client), tiny_jpeg(1), key=key)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] != second.get_json()["id"]
    assert len(photos_in_db(app)) == 2


# --------------------------------------------------------------------------------------------
# Who may upload, and what the request must look like


@pytest.mark.parametrize("case", ["wrong_receipt", "missing_receipt", "unknown_report"])
def test_upload_without_a_valid_receipt_is_404_and_the_body_is_not_read(app, client, case):
    report = new_report(client)
    receipt = {"wrong_receipt": "AAAA-BBBB-CCCC-DDDD-EEEE", "missing_receipt": MISSING}.get(case)
    target = Reported(str(uuid.uuid4()), report.receipt) if case == "unknown_report" else report
    body, content_type = multipart_body(
        {"photo": (io.BytesIO(photo_bytes("orientation_1.jpg")), "p.jpg", "image/jpeg")}
    )
    stream = CountingStream(body)
    response = client.post(
        PHOTOS_URL.format(target.id),
        input_stream=stream,
        headers={**photo_headers(target, receipt=receipt), "Content-Type": content_type,
                 "Content-Length": str(len(body))},
    )
    assert_problem(response, 404)
    assert stream.bytes_read == 0
    assert_nothing_kept(app)


def test_missing_idempotency_key_is_422(app, client):
    response = upload(client, new_report(client), tiny_jpeg(1), key=MISSING)
    body = assert_problem(response, 422)
    assert body["errors"] == {"Idempotency-Key": ["Required."]}
    assert_nothing_kept(app)


def test_json_body_is_415(app, client):
    report = new_report(client)
    response = client.post(PHOTOS_URL.format(report.id), json={"photo": "aGVsbG8="},
                           headers=photo_headers(report))
    assert_problem(response, 415)
    assert_nothing_kept(app)


MALFORMED_FORMS = {
    "no_photo_field": (
        lambda: {"picture": (io.BytesIO(tiny_jpeg(1)), "p.jpg", "image/jpeg")},
        {"photo", "picture"},
    ),
    "two_files_in_photo": (
        lambda: {"photo": [(io.BytesIO(tiny_jpeg(1)), "a.jpg", "image/jpeg"),
                           (io.BytesIO(tiny_jpeg(2)), "b.jpg", "image/jpeg")]},
        {"photo"},
    ),
    "extra_text_field": (
        lambda: {"photo": (io.BytesIO(tiny_jpeg(1)), "p.jpg", "image/jpeg"), "note": "hi"},
        {"note"},
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FORMS))
def test_malformed_form_is_422_naming_the_fields(app, client, case):
    fields, named = MALFORMED_FORMS[case]
    report = new_report(client)
    response = post_form(client, report.id, fields(), photo_headers(report))
    body = assert_problem(response, 422)
    assert set(body["errors"]) == named
    assert_nothing_kept(app)


def test_photo_uploads_are_rate_limited_with_retry_after(make_app):
    app = make_app(RATELIMIT_PHOTOS="2/minute")
    client = app.test_client()
    report = new_report(client)
    assert upload(client, report, tiny_jpeg(1)).status_code == 202
    assert upload(client, report, tiny_jpeg(2)).status_code == 202
    response = upload(client, report, tiny_jpeg(3))
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert len(photos_in_db(app)) == 2
    assert len(quarantined(app)) == 2


# --------------------------------------------------------------------------------------------
# Property tests: whatever arrives, the answer is a 2xx/4xx of the contract, processing ends
# in ready or rejected, and no raw upload outlives its processing.

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SMALL_PHOTOS = ("orientation_1.jpg", "exif_chunk.png", "flower_exif_makernote.webp")


@st.composite
def damaged_photos(draw) -> bytes:
    """A small real photo with a few bytes flipped, a cut, or bytes inserted."""
    data = bytearray(photo_bytes(draw(st.sampled_from(SMALL_PHOTOS))))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        # Headers are where parsers are fragile: damage them more often.
        at = draw(st.one_of(st.integers(0, min(1023, len(data) - 1)),
                            st.integers(0, len(data) - 1)))
        # Flips most often: a cut or an insertion usually stops the decode at once.
        kind = draw(st.sampled_from(["flip", "flip", "flip", "insert", "cut"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def assert_upload_contract(app, client, data: bytes) -> None:
    response = upload(client, new_report(client), data, filename="fuzz.bin")
    assert response.status_code in (202, 413, 415, 422), response.get_data(as_text=True)
    if response.status_code != 202:
        assert response.mimetype == "application/problem+json"
        return
    photo_id = response.get_json()["id"]
    assert jobs.process_photo(photo_id) == "done"
    db.session.expire_all()
    processed = db.session.get(Photo, uuid.UUID(photo_id))
    assert processed.status in (PhotoStatus.READY.value, PhotoStatus.REJECTED.value)
    assert processed.quarantine_key is None
    assert quarantined(app) == []


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_cause_a_server_error(app, client, data):
    assert_upload_contract(app, client, data)


@FUZZ
@given(data=damaged_photos())
def test_damaged_photos_never_cause_a_server_error(app, client, data):
    assert_upload_contract(app, client, data)

"""The email an authority receives, sent to a real SMTP server and parsed back with `email`."""

from __future__ import annotations

import json
import math
import uuid

from sqlalchemy import select, update

from stopapp.db import unit_of_work
from stopapp.extensions import db
from stopapp.forwarding.models import Forward
from stopapp.media.storage import LocalStorage
from stopapp.models import Photo, Report
from tests.forwarding.conftest import new_report
from tests.helpers import assert_problem
from tests.media.conftest import assert_bare_jpeg, device_secrets, gps_rational_bytes, photo
from tests.test_photo_jobs import accept, process
from tests.test_photos_api import Reported, media_root

EXACT = (51.492731, -0.224048)
# Digits of the exact point that a coarse message must not carry anywhere.
EXACT_DIGITS = ("51.4927", "0.2240", "492731", "224048")
CONTACT = {"name": "Maria Testperson", "phone": "+44 7700 900123",
           "email": "maria.testperson@example.net", "consent_to_contact": True}


def parse_geojson(data: bytes) -> dict:
    """Parse strictly and check the structure RFC 7946 requires of our FeatureCollection."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    doc = json.loads(data.decode("utf-8"), parse_constant=refuse)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert isinstance(doc["features"], list) and doc["features"]
    for feature in doc["features"]:
        assert feature["type"] == "Feature" and "crs" not in feature
        assert isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        if geometry is not None:
            assert geometry["type"] == "Point"
            lon, lat = geometry["coordinates"]  # RFC 7946 3.1.1: longitude first, 2 values
            for number in (lon, lat):
                assert isinstance(number, int | float) and math.isfinite(number)
            assert -180 <= lon <= 180 and -90 <= lat <= 90
    return doc


def whole_text(message) -> str:
    """Every decoded text part and the raw message, for searching."""
    parts = [message.as_string()]
    for part in message.walk():
        if part.get_content_maintype() == "text" or part.get_content_type().endswith("json"):
            content = part.get_content()
            parts.append(content.decode() if isinstance(content, bytes) else content)
    return "\n".join(parts)


def attachments(message) -> dict[str, object]:
    return {part.get_filename(): part for part in message.iter_attachments()}


def forward_row(app, forward_id: str) -> Forward:
    with app.app_context():
        db.session.expire_all()
        row = db.session.get(Forward, uuid.UUID(forward_id))
        db.session.expunge(row)
        return row


def add_photos(app, report_id: str, receipt: str, names: list[str]) -> None:
    client = app.test_client()
    for name in names:
        _, photo_id = accept(client, name, Reported(report_id, receipt))
        process(app, photo_id)


def tag(app, report_id: str) -> None:
    # A code of the seeded vocabulary, whose crosswalk lists each scheme's codes.
    with app.app_context(), unit_of_work():
        db.session.execute(update(Report).where(Report.id == uuid.UUID(report_id))
                           .values(tags=["control:debt_bondage", "free:van seen twice"]))


def test_sent_email_has_headers_parts_clean_photos_and_valid_geojson(scene_at, smtp_server):
    server = smtp_server()
    scene = scene_at(server.port)
    police = scene.authority("H&F Police", ["a@example.org", "b@example.org"], ["E09000013"])
    report_id, receipt = new_report(scene.app, lat=EXACT[0], lon=EXACT[1])
    names = ["iphone6_gps.jpg", "nikon_d70s_gps_serial_iptc.jpg"]
    add_photos(scene.app, report_id, receipt, names)
    tag(scene.app, report_id)
    [forward_id] = scene.forward_ids(report_id, [police], note="Seen by two reporters.")
    assert scene.send(forward_id) == "sent"

    [message] = server.inbox.received
    [envelope] = server.inbox.envelopes
    assert sorted(envelope.rcpt_tos) == ["a@example.org", "b@example.org"]
    row = forward_row(scene.app, forward_id)
    assert message["Message-ID"] == row.message_id and row.status == "sent"
    assert row.smtp_reply.startswith("250") and row.sent_at is not None and row.attempts == 1
    with scene.app.app_context():
        reference = db.session.get(Report, uuid.UUID(report_id)).reference
        store = LocalStorage(media_root(scene.app))
        stored = []
        for row_ in db.session.scalars(select(Photo).order_by(Photo.created_at)):
            with store.open(row_.display_key) as handle:
                stored.append(handle.read())
    subject = message["Subject"]
    assert reference in subject and "labour" in subject and "Hammersmith and Fulham" in subject
    assert "car wash" not in subject.lower()
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for text_part in (body, html):
        assert "Workers sleep in the back of the car wash" in text_part
        assert "Seen by two reporters." in text_part
        assert "meansOfControlDebtBondage" in text_part
        assert "control:debt_bondage" in text_part and "['" not in text_part
        assert "van seen twice" not in text_part  # free tags stay inside
        assert "https://www.openstreetmap.org/?mlat=51.492731&amp;mlon=-0.224048" in html
    assert "https://www.openstreetmap.org/?mlat=51.492731&mlon=-0.224048" in body
    assert "CTDC: meansOfControlDebtBondage" in body
    assert "AB12 CDE" in body and "Possible victims: 3" in body

    files = attachments(message)
    assert sorted(files) == ["photo-1.jpg", "photo-2.jpg", f"report-{reference}.geojson"]
    for number, name in enumerate(names, 1):
        part = files[f"photo-{number}.jpg"]
        assert part.get_content_type() == "image/jpeg"
        data = part.get_content()
        assert data == stored[number - 1]  # exactly the stored clean copy, not re-encoded
        assert_bare_jpeg(data, [*gps_rational_bytes(photo(name)), *device_secrets(photo(name))])
    geo = files[f"report-{reference}.geojson"]
    assert geo.get_content_type() == "application/geo+json"
    doc = parse_geojson(geo.get_content())
    [feature] = doc["features"]
    assert feature["geometry"]["coordinates"] == [EXACT[1], EXACT[0]]
    assert feature["properties"]["reference"] == reference
    assert feature["properties"]["areas"] == [{"code": "E09000013",
                                               "name": "Hammersmith and Fulham"}]


def test_contact_details_travel_only_when_the_analyst_chooses(scene_at, smtp_server):
    server = smtp_server()
    scene = scene_at(server.port)
    police = scene.authority("H&F Police", ["a@example.org"], ["E09000013"])
    report_id, _ = new_report(scene.app, contact=CONTACT)
    [without] = scene.forward_ids(report_id, [police])
    [with_contact] = scene.forward_ids(report_id, [police], include_contact=True)
    scene.send(without)
    scene.send(with_contact)
    by_id = {m["Message-ID"]: whole_text(m) for m in server.inbox.received}
    hidden = by_id[forward_row(scene.app, without).message_id]
    shown = by_id[forward_row(scene.app, with_contact).message_id]
    for value in ("Maria Testperson", "7700 900123", "maria.testperson@example.net"):
        assert value not in hidden
        assert value in shown


def test_contact_is_refused_without_the_reporters_consent(scene_at, smtp_server):
    scene = scene_at(smtp_server().port)
    police = scene.authority("H&F Police", ["a@example.org"], ["E09000013"])
    report_id, _ = new_report(scene.app)
    version = report_version_of(scene, report_id)
    response = scene.forward(report_id, [police], include_contact=True)
    assert "include_contact" in assert_problem(response, 422, "include_contact")["errors"]
    assert report_version_of(scene, report_id) == version
    with scene.app.app_context():
        assert db.session.scalar(select(Forward.id)) is None


def report_version_of(scene, report_id: str) -> int:
    from tests.forwarding.conftest import report_version

    return report_version(scene.app, report_id)


def test_coarse_location_is_coarse_everywhere_in_the_message(scene_at, smtp_server):
    server = smtp_server()
    scene = scene_at(server.port)
    police = scene.authority("H&F Police", ["a@example.org"], ["E09000013"])
    report_id, _ = new_report(scene.app, lat=EXACT[0], lon=EXACT[1])
    expected = {100: (51.493, -0.224), 1000: (51.49, -0.22)}
    for precision, (lat, lon) in expected.items():
        [forward_id] = scene.forward_ids(report_id, [police], location_precision_m=precision)
        scene.send(forward_id)
        message = server.inbox.received[-1]
        everything = whole_text(message)
        for digits in EXACT_DIGITS:
            assert digits not in everything, (precision, digits)
        assert "Car wash behind the station" not in everything  # the typed place too
        decimals = {100: 3, 1000: 2}[precision]
        assert f"mlat={lat:.{decimals}f}&mlon={lon:.{decimals}f}" in everything
        [geo] = [p for p in message.iter_attachments() if p.get_filename().endswith(".geojson")]
        feature = parse_geojson(geo.get_content())["features"][0]
        assert feature["geometry"]["coordinates"] == [lon, lat]
        assert feature["properties"]["location_precision_m"] == precision
        assert feature["properties"]["accuracy_m"] >= precision


def test_report_text_is_escaped_in_the_html_part(scene_at, smtp_server):
    server = smtp_server()
    scene = scene_at(server.port)
    police = scene.authority("H&F Police", ["a@example.org"], ["E09000013"])
    report_id, _ = new_report(scene.app, description='<script>alert("x")</script> & more')
    [forward_id] = scene.forward_ids(report_id, [police], note="<b>note</b>")
    scene.send(forward_id)
    [message] = server.inbox.received
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html and "<b>note</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;note&lt;/b&gt;" in html
    text_part = message.get_body(preferencelist=("plain",)).get_content()
    assert '<script>alert("x")</script> & more' in text_part  # plain text is not HTML

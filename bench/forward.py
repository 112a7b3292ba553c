"""Benchmark of the forwarding job against bare `email` + `smtplib` sending the same messages.

Run from the repository root, against a database with the migrations applied (it applies them
if needed) and a Redis database of your own:

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/stopapp_dev \
    REDIS_URL=redis://127.0.0.1:6379/8 python bench/forward.py [--runs N] [--port P]

One report with 5 photos (processed by the real photo job into clean display copies) is
forwarded to 3 authorities, one with a PGP key made here. The JOB is `workers.jobs.send_forward`
run in this process, as a SimpleWorker would run it: lock, attempt row, message built from the
database with the templates, photos read from the store, PGP/MIME for the keyed authority, SMTP
to the mail sink of `make run` (aiosmtpd) in its own process, outcome row. The BASELINE
builds the same three messages from the same facts already in memory with bare `email`
(EmailMessage, policy SMTP: text and HTML parts, the 5 photos read from the store, the
GeoJSON, PGP/MIME through the same python-gnupg keyring) and sends each with smtplib to the
same server. Between runs the forward rows are put back to `queued`. Times are medians of
--runs runs after one warm-up, the two variants alternating. Everything the bench creates is
deleted at the end.

"Worker time" is CPU time: this process's plus that of the gpg processes it ran (waited-for
children), which is what a worker spends on a forward whatever else the machine is doing.
PostgreSQL's and the mail sink's own work are not in it. Wall-clock times are printed too;
on a shared, loaded machine they mostly measure the load.

Targets: at most 1 s of worker time for all three, at most 1.3x the bare build.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gnupg  # noqa: E402 - after the path setup
from flask_migrate import upgrade  # noqa: E402
from rq import Queue  # noqa: E402
from sqlalchemy import delete, select, update  # noqa: E402

from stopapp import create_app  # noqa: E402
from stopapp.accounts import services as accounts  # noqa: E402
from stopapp.db import unit_of_work  # noqa: E402
from stopapp.extensions import db, redis_client  # noqa: E402
from stopapp.forwarding import message as forward_message  # noqa: E402
from stopapp.forwarding import services as forwarding  # noqa: E402
from stopapp.forwarding.cli import _import_demo_areas_if_missing  # noqa: E402
from stopapp.forwarding.models import Authority, Forward  # noqa: E402
from stopapp.media import services as media  # noqa: E402
from stopapp.models import Photo, Report, User  # noqa: E402
from stopapp.reports import services as reports  # noqa: E402
from tests.conftest import VALID_REPORT  # noqa: E402
from workers import jobs  # noqa: E402

PHOTOS = REPO / "tests" / "data" / "photos"
PHOTO_NAMES = ["iphone6_gps.jpg", "galaxyS7_gps_app13.jpg", "nikon_d70s_gps_serial_iptc.jpg",
               "orientation_6.jpg", "orientation_3.jpg"]
TIME_TARGET_S = 1.0
RATIO_TARGET = 1.3


def setup(tag: str, gnupg_home: str) -> tuple[uuid.UUID, list[uuid.UUID], uuid.UUID]:
    """The report with 5 ready photos, 3 authorities (one keyed), an analyst; the forwards."""
    _import_demo_areas_if_missing()
    with unit_of_work():
        submission = reports.submit_report(
            {**VALID_REPORT, "exploitation_types": ["labour"]}, uuid.uuid4())
    report_id = submission.report_id
    for name in PHOTO_NAMES:
        with unit_of_work(), open(PHOTOS / name, "rb") as handle:
            photo_id = media.accept_photo(report_id, submission.receipt, uuid.uuid4(),
                                          lambda handle=handle: handle).photo.id
        jobs.process_photo(str(photo_id))
    jobs.triage_report(str(report_id))
    with tempfile.TemporaryDirectory() as owner:
        gpg = gnupg.GPG(gnupghome=owner)
        key = gpg.gen_key(gpg.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign", subkey_type="ECDH",
            subkey_curve="cv25519", subkey_usage="encrypt", name_email="bench@example.org",
            no_protection=True))
        public = gpg.export_keys(key.fingerprint)
        os.system(f"gpgconf --homedir {owner} --kill gpg-agent >/dev/null 2>&1")
    with unit_of_work():
        analyst = accounts.create_user(f"bench-{tag}@example.org", "analyst",
                                       "correct horse battery", name="Bench")
        ids = [forwarding.register_authority({
            "name": f"Bench {tag} {n}", "emails": [f"a{n}@example.org", f"b{n}@example.org"],
            "area_codes": ["E09000013"], "exploitation_types": [],
            **({"pgp_public_key": public, "encrypted_only": True} if n == 0 else {}),
        }).id for n in range(3)]
    with unit_of_work():
        report = db.session.get(Report, report_id)
        forwards = forwarding.forward_report(analyst, report_id, {report.version},
                                             authority_ids=ids, note="Bench note.")
        forward_ids = [f.id for f in forwards.forwards]
    return report_id, forward_ids, analyst.id


def reset(forward_ids: list[uuid.UUID]) -> None:
    with unit_of_work():
        db.session.execute(update(Forward).where(Forward.id.in_(forward_ids)).values(
            status="queued", attempts=0, sent_at=None, smtp_reply=None))


def clocks() -> tuple[float, float]:
    """(wall, CPU of this process and its finished children), in seconds."""
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clocks()
    return now[0] - start[0], now[1] - start[1]


def run_jobs(forward_ids: list[uuid.UUID]) -> list[tuple[float, float]]:
    times = []
    for forward_id in forward_ids:
        start = clocks()
        status = jobs.send_forward(str(forward_id))
        times.append(since(start))
        assert status == "sent", status
    return times


TEXT = """STOP APP intelligence report {reference}

WHAT
Exploitation: {types}
{description}

WHERE
Coordinates: {lat}, {lon}
Map: {map_url}
Place: {place}
Area: {areas}

WHEN
Occurred: {occurred_at}

NOTE
{note}
"""
HTML = ("<!DOCTYPE html><html><body><h1>STOP APP intelligence report {reference}</h1>"
        "<p>{types}</p><p>{description}</p><p>{lat}, {lon} <a href=\"{map_url}\">map</a></p>"
        "<p>{place}</p><p>{areas}</p><p>{occurred_at}</p><p>{note}</p></body></html>")


def bare_facts(report_id: uuid.UUID, forward_ids: list[uuid.UUID]) -> list[dict]:
    """What the bare build needs, loaded once, outside the timing."""
    with unit_of_work():
        report = db.session.get(Report, report_id)
        point = forward_message._point(report, None)
        keys = [p.display_key for p in db.session.scalars(
            select(Photo).where(Photo.report_id == report_id).order_by(Photo.created_at))]
        out = []
        for forward in db.session.scalars(select(Forward).where(Forward.id.in_(forward_ids))):
            authority = forward.authority
            out.append({
                "reference": report.reference, "types": ", ".join(report.exploitation_types),
                "description": report.description, "lat": point.lat_text, "lon": point.lon_text,
                "map_url": forward_message.map_url(point, None), "place": report.place,
                "areas": "Hammersmith and Fulham", "occurred_at": report.occurred_at.isoformat(),
                "note": forward.note, "emails": list(authority.emails),
                "key": authority.pgp_public_key, "fingerprint": authority.pgp_fingerprint,
                "message_id": forward.message_id, "photo_keys": keys,
                "point": [point.lon, point.lat],
            })
    return out


def bare_send(facts: list[dict], port: int, gnupg_home: str) -> list[tuple[float, float]]:
    store = media.storage()
    keyring = gnupg.GPG(gnupghome=gnupg_home)  # the job's keyring: the key is in it already
    times = []
    for f in facts:
        start = clocks()
        part = MIMEPart(policy=SMTP) if f["key"] else EmailMessage(policy=SMTP)
        part.set_content(TEXT.format(**f))
        part.add_alternative(HTML.format(**f), subtype="html")
        for n, key in enumerate(f["photo_keys"], 1):
            with store.open(key) as handle:
                part.add_attachment(handle.read(), maintype="image", subtype="jpeg",
                                    filename=f"photo-{n}.jpg")
        geo = {"type": "FeatureCollection", "features": [{
            "type": "Feature", "geometry": {"type": "Point", "coordinates": f["point"]},
            "properties": {"reference": f["reference"], "description": f["description"]}}]}
        part.add_attachment(json.dumps(geo).encode(), maintype="application",
                            subtype="geo+json", filename=f"report-{f['reference']}.geojson")
        if f["key"]:
            ciphertext = keyring.encrypt(part.as_bytes(policy=SMTP), [f["fingerprint"]],
                                         always_trust=True, armor=True).data
            message = EmailMessage(policy=SMTP)
            message["Content-Type"] = 'multipart/encrypted; protocol="application/pgp-encrypted"'
            control = MIMEPart(policy=SMTP)
            control.set_content(b"Version: 1\r\n", maintype="application",
                                subtype="pgp-encrypted", cte="7bit")
            payload = MIMEPart(policy=SMTP)
            payload.set_content(ciphertext, maintype="application", subtype="octet-stream",
                                cte="7bit")
            message.attach(control)
            message.attach(payload)
        else:
            message = part
        message["From"] = "bench@stopapp.invalid"
        message["To"] = ", ".join(f["emails"])
        message["Subject"] = f"STOP APP report {f['reference']}"
        message["Message-ID"] = f["message_id"]
        with smtplib.SMTP("127.0.0.1", port, local_hostname="stopapp.invalid") as smtp:
            smtp.sendmail("bench@stopapp.invalid", f["emails"], message.as_bytes())
        times.append(since(start))
    return times


def cleanup(report_id, forward_ids, analyst_id, tag) -> None:
    with unit_of_work():
        db.session.execute(delete(Report).where(Report.id == report_id))
        db.session.execute(delete(Authority).where(Authority.name.like(f"Bench {tag} %")))
        db.session.execute(delete(User).where(User.id == analyst_id))
    queue = Queue("forwarding", connection=redis_client())
    for forward_id in forward_ids:
        queue.remove(f"send-forward-{forward_id}")
        redis_client().delete(f"rq:job:send-forward-{forward_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--port", type=int, default=8089, help="port of the in-process server")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app({"MEDIA_ROOT": f"{scratch}/media", "GNUPG_HOME": f"{scratch}/gnupg",
                          "SMTP_PORT": args.port, "PASSWORD_TIME_COST": 1,
                          "PASSWORD_MEMORY_KIB": 1024})
        # The mail sink of `make run`, in a process of its own: receiving 2.5 MB messages
        # must not take CPU time from the process being measured.
        sink = subprocess.Popen(
            [sys.executable, "-m", "scripts.mailsink", "--port", str(args.port),
             "--dir", f"{scratch}/mail"], cwd=REPO, stdout=subprocess.PIPE)
        sink.stdout.readline()  # it says when it listens
        try:
            with app.app_context():
                upgrade()
                report_id, forward_ids, analyst_id = setup(tag, f"{scratch}/gnupg")
                try:
                    facts = bare_facts(report_id, forward_ids)
                    ours, bare = [], []
                    for run in range(args.runs + 1):
                        reset(forward_ids)
                        job_times = run_jobs(forward_ids)
                        bare_times = bare_send(facts, args.port, f"{scratch}/gnupg")
                        if run:  # the first is the warm-up
                            ours.append(job_times)
                            bare.append(bare_times)
                finally:
                    cleanup(report_id, forward_ids, analyst_id, tag)
                    db.engine.dispose()
            received = len(os.listdir(f"{scratch}/mail"))
        finally:
            sink.terminate()
            sink.wait()
            os.system(f"gpgconf --homedir {scratch}/gnupg --kill gpg-agent >/dev/null 2>&1")
    names = ["PGP", "plain", "plain"]
    print(f"forward of 1 report with {len(PHOTO_NAMES)} photos to 3 authorities, "
          f"median of {args.runs} runs, in ms (CPU = worker time; wall)")
    print(f"{'authority':<10}{'job CPU':>10}{'bare CPU':>10}{'ratio':>7}"
          f"{'job wall':>10}{'bare wall':>10}")

    def med(rows, pick, clock):
        return statistics.median(pick(r)[clock] for r in rows) * 1000

    def total(r):
        return (sum(t[0] for t in r), sum(t[1] for t in r))

    for i, name in enumerate([*names, "all three"]):
        pick = total if i == len(names) else (lambda r, i=i: r[i])
        job, raw = med(ours, pick, 1), med(bare, pick, 1)
        print(f"{name:<10}{job:>10.1f}{raw:>10.1f}{job / raw:>7.2f}"
              f"{med(ours, pick, 0):>10.1f}{med(bare, pick, 0):>10.1f}")
    cpu_total = med(ours, total, 1) / 1000
    ratio = cpu_total / (med(bare, total, 1) / 1000)
    print(f"target: all three <= {TIME_TARGET_S:.1f} s of worker time: "
          f"{'met' if cpu_total <= TIME_TARGET_S else 'MISSED'}; "
          f"ratio <= {RATIO_TARGET}: {'met' if ratio <= RATIO_TARGET else 'MISSED'}")
    print(f"messages received by the server: {received}")


if __name__ == "__main__":
    main()

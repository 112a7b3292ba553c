"""Peak memory of a web worker while 8 clients upload the largest allowed PNG at once.

Run from the repository root:  .venv/bin/python bench/uploads.py [--clients 8]

The real app under gunicorn as `make run` serves it (gunicorn.conf.py: 2 workers x 4 threads),
on 127.0.0.1 and a port the kernel hands out. A PNG of 60,000,000 pixels (8000x7500, smooth
enough to stay under the 20 MiB upload limit) is made here; one report is stored through the
API for each client, then --clients threads upload the PNG at the same moment (a barrier),
each to its own report (uploads to one report are serialised by its row lock anyway).

Two rounds, each on a fresh server: "bounded" with the default UPLOAD_DECODE_PIXELS (one
60 MP decode at a time per process) and "unbounded" with a budget large enough never to make
an upload wait (what the upload check did before the budget). For each: the peak resident
memory of each gunicorn worker (VmHWM from /proc, reset through /proc/PID/clear_refs once the
worker is warm), the answers (every one must be 202), the photo rows stored (one per answer:
nothing lost) and the wall time of the burst. Target: the bounded peak under 600 MB.

Scratch state only: the database stopapp_bench_uploads (BENCH_DATABASE, a stopapp_b* name;
rebuilt from the migrations, dropped at the end), Redis database 13 (BENCH_REDIS_URL, flushed)
and a temporary media folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# bench.intake's scratch helpers read it when imported.
os.environ.setdefault("BENCH_DATABASE", "stopapp_bench_uploads")

from PIL import Image  # noqa: E402 - after the path setup

import bench.intake as intake  # noqa: E402
from bench.intake import Server, flush_redis, scalar  # noqa: E402
from tests.conftest import VALID_REPORT  # noqa: E402

GUNICORN_CONFIG = REPO / "gunicorn.conf.py"
TARGET_MB = 600
MB = 1024 * 1024
UNBOUNDED_PIXELS = 10**12


def make_png(path: Path) -> None:
    """8000x7500 RGB, gradients with a fine pattern: 60 MP that compress to a few MiB."""
    width, height = 8000, 7500
    red = Image.linear_gradient("L").resize((width, height))
    green = red.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    blue = Image.effect_noise((256, 256), 40).resize((width, height))
    Image.merge("RGB", (red, green, blue)).save(path, "PNG", compress_level=6)


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def workers_of(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)],
                         capture_output=True, text=True, check=True).stdout
    return [int(pid) for pid in out.split()]


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
        f"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def burst(name: str, budget: int, png: bytes, clients: int, logdir: Path) -> bool:
    flush_redis()
    intake.build_database()
    server = Server(name, "wsgi:app", REPO, {
        "DATABASE_URL": intake.DATABASE_URL, "REDIS_URL": intake.REDIS_URL,
        "RATELIMIT_ENABLED": "0", "MEDIA_ROOT": str(logdir / name),
        "UPLOAD_DECODE_PIXELS": str(budget),
    }, "/readyz")
    server.start(logdir)
    try:
        reports = []
        for _ in range(clients):  # one report each: uploads to one report wait on its row lock
            status, answer = post(server.port, "/api/v1/reports",
                                  json.dumps(VALID_REPORT).encode(),
                                  {"Content-Type": "application/json",
                                   "Idempotency-Key": str(uuid.uuid4())})
            assert status == 201, answer
            reports.append(json.loads(answer))
        workers = workers_of(server.process.pid)
        for pid in workers:  # the warm worker's own memory is the floor of its peak
            with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        before = {pid: status_kib(pid, "VmRSS") for pid in workers}
        body, content_type = multipart(png)
        barrier = threading.Barrier(clients)
        answers: list[int] = []

        def upload(report: dict) -> None:
            barrier.wait()
            code, _ = post(server.port, f"/api/v1/reports/{report['id']}/photos", body, {
                "Content-Type": content_type, "X-Report-Receipt": report["receipt"],
                "Idempotency-Key": str(uuid.uuid4()),
            })
            answers.append(code)

        threads = [threading.Thread(target=upload, args=(r,)) for r in reports]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        peaks = {pid: status_kib(pid, "VmHWM") for pid in workers}
        rows = scalar("SELECT count(*) FROM photos")
    finally:
        server.stop()
        intake.drop_scratch_database()
    peak_mb = max(peaks.values()) * 1024 / MB
    ok = answers.count(202) == clients == rows
    print(f"{name:9} (UPLOAD_DECODE_PIXELS={budget}): peak RSS per worker " + ", ".join(
        f"{peaks[pid] * 1024 / MB:.0f} MB (from {before[pid] * 1024 / MB:.0f})"
        for pid in workers) + f"; max {peak_mb:.0f} MB; answers {sorted(answers)}, "
        f"{rows} photos stored; burst {wall:.1f} s -> {'OK' if ok else 'LOST OR FAILED'}",
        flush=True)
    return ok and (name != "bounded" or peak_mb < TARGET_MB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as scratch:
        logdir = Path(scratch)
        png_path = logdir / "60mp.png"
        make_png(png_path)
        png = png_path.read_bytes()
        print(f"PNG: 8000x7500 = 60,000,000 pixels, {len(png) / MB:.1f} MiB; "
              f"{args.clients} clients at once; target: bounded peak < {TARGET_MB} MB")
        ok = burst("bounded", 60_000_000, png, args.clients, logdir)
        burst("unbounded", UNBOUNDED_PIXELS, png, args.clients, logdir)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

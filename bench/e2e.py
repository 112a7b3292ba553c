"""End to end: from the 201 answer to the report being in the analysts' queue (`new` or later).

Run from the repository root:  .venv/bin/python bench/e2e.py [--rate 50] [--seconds 60]

The processes of `make run` (scripts/run.sh), started the same way: gunicorn with
gunicorn.conf.py (2 workers x 4 threads), the RQ workers (two for triage without forking,
one forking for media and maintenance), the dispatcher and `rq cron`, on
127.0.0.1 and a port the kernel hands out. New reports arrive open loop (bench/openloop.py),
on a fixed schedule of --rate per second for --seconds (a slow answer does not delay the next
arrival). The reports are bench/intake.py's: the example report with its point spread over
about 40 km around London and a numbered description, so a few of them are possible duplicates
of each other; with --same-point every report has the example's point and nearly its text,
so each new report is linked to every one before it (a hot spot far beyond bench/triage.py's).
A poller
reads, every --poll-ms, which of the answered reports have left `received`; the time from
the 201 to the poll that saw it is the latency (so it is over-stated by up to one poll
interval). After the schedule, stragglers get --grace seconds. Printed: p50, p95, p99 and max
of that latency, the answer time of the POST itself for scale, and the number of reports that
never arrived (must be 0). Target: p95 at most 2 s.

Scratch state only: the database stopapp_bench_e2e (BENCH_DATABASE, a stopapp_b* name;
rebuilt from the migrations, dropped at the end) and Redis database 13 (BENCH_REDIS_URL,
flushed). Every process is stopped at the end, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# bench.intake's scratch helpers read it when imported.
os.environ.setdefault("BENCH_DATABASE", "stopapp_bench_e2e")

import psycopg  # noqa: E402 - after the path setup

import bench.intake as intake  # noqa: E402
from bench.intake import Server, flush_redis, percentile  # noqa: E402
from bench.openloop import Answer, send_open_loop  # noqa: E402
from tests.conftest import VALID_REPORT  # noqa: E402

P95_TARGET_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50, help="new reports per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--senders", type=int, default=32, help="client threads")
    parser.add_argument("--poll-ms", type=float, default=20)
    parser.add_argument("--grace", type=float, default=120,
                        help="seconds to wait for stragglers (it stops once all arrived)")
    parser.add_argument("--same-point", action="store_true",
                        help="every report at one point with one text (a worst-case hot spot: "
                             "each links to all before it) instead of bench/intake.py's spread")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    scratch = tempfile.TemporaryDirectory(prefix="bench-e2e-")
    logdir = Path(scratch.name)
    env = {
        "DATABASE_URL": intake.DATABASE_URL, "REDIS_URL": intake.REDIS_URL,
        "RATELIMIT_ENABLED": "0", "MEDIA_ROOT": str(logdir / "media"),
    }
    # The same processes as scripts/run.sh starts.
    server = Server("e2e", "wsgi:app", REPO, env, "/readyz", companions=[
        [sys.executable, "-m", "workers.worker", "--simple", "triage"],
        [sys.executable, "-m", "workers.worker", "--simple", "triage"],
        [sys.executable, "-m", "workers.worker", "media", "maintenance"],
        [sys.executable, "-m", "workers.dispatcher"],
        [str(Path(sys.executable).parent / "rq"), "cron", "--url", intake.REDIS_URL,
         "workers.cron"],
    ])
    answered: dict[str, float] = {}  # report id -> when its 201 came
    arrived: dict[str, float] = {}  # report id -> when it was seen past `received`
    answer_times: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    sending_done = threading.Event()
    try:
        flush_redis()
        intake.build_database()
        server.start(logdir)
        total = int(args.rate * args.seconds)
        if args.same_point:
            bodies = []
            for i in range(50):
                report = copy.deepcopy(VALID_REPORT)
                report["description"] = f"{VALID_REPORT['description']} Note {i:02d}."
                bodies.append(json.dumps(report).encode())
        else:
            bodies = intake.report_bodies()

        def fresh(index: int) -> tuple[bytes, str, object]:
            return bodies[index % len(bodies)], str(uuid.uuid4()), None

        def record(answer: Answer) -> None:
            with lock:
                if answer.status != 201:
                    problems.append(f"HTTP {answer.status} {answer.body[:200]!r}")
                    return
                answered[json.loads(answer.body)["id"]] = answer.answered
                answer_times.append(answer.latency)

        def failed(text: str) -> None:
            with lock:
                problems.append(text)

        def poller() -> None:
            with psycopg.connect(intake.PLAIN_DSN, autocommit=True) as conn:
                while True:
                    finished = sending_done.is_set()
                    with lock:
                        waiting = [i for i in answered if i not in arrived]
                    if waiting:
                        rows = conn.execute(
                            "SELECT id::text FROM reports WHERE id = ANY(%s::uuid[]) "
                            "AND state <> 'received'", (waiting,)).fetchall()
                        seen = time.perf_counter()
                        with lock:
                            for (report_id,) in rows:
                                arrived[report_id] = seen
                    elif finished:
                        return
                    if finished and time.perf_counter() > grace_end:
                        return
                    time.sleep(args.poll_ms / 1000)

        grace_end = float("inf")
        watcher = threading.Thread(target=poller, daemon=True)
        watcher.start()
        start, _end = send_open_loop(server.port, "/api/v1/reports", args.rate, total, fresh,
                                     record, failed, senders=args.senders, start_delay_s=0.5)
        sent_for = time.perf_counter() - start
        grace_end = time.perf_counter() + args.grace
        sending_done.set()
        watcher.join()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    finally:
        server.stop()
        flush_redis()
        intake.drop_scratch_database()
        scratch.cleanup()

    latencies = sorted(arrived[i] - answered[i] for i in arrived)
    missing = len(answered) - len(arrived)
    answers = sorted(answer_times)
    p95 = percentile(latencies, 0.95)
    print(f"{len(answered)} reports answered 201 of {total} due at {args.rate:g}/s over "
          f"{sent_for:.1f} s ({len(problems)} failed); POST answered in "
          f"p50 {percentile(answers, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(answers, 0.99) * 1000:.0f} ms")
    for line in problems[:5]:
        print(f"  {line}")
    print(f"201 -> new (or later): p50 {percentile(latencies, 0.5):.2f} s, p95 {p95:.2f} s "
          f"(target <= {P95_TARGET_S:g} s), p99 {percentile(latencies, 0.99):.2f} s, max "
          f"{latencies[-1] if latencies else float('nan'):.2f} s; never arrived: {missing}")
    ok = not problems and missing == 0 and len(answered) == total and p95 <= P95_TARGET_S
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

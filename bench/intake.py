"""Benchmark of report intake (POST /api/v1/reports) against a bare Flask app doing one INSERT.

Run from the repository root:  .venv/bin/python bench/intake.py [--rounds 3] [--seconds 10]
                                   [--warmup 2] [--threads 16] [--max-requests 200000] [--profile N]

Three workloads on two servers, both under gunicorn with the same settings (the repository's
gunicorn.conf.py, then --workers 2 --threads 4 --no-control-socket, on 127.0.0.1 and a free
port):

- baseline: bench/baseline_app.py, bare Flask that parses the JSON body, does one INSERT of a
  row with a geography point into a table with a GiST index (psycopg 3, one connection per
  worker thread) and answers 201 JSON. The floor any intake could reach on this machine.
- intake: the real app (wsgi:app). Every request has a fresh Idempotency-Key, so each one
  stores a report and queues a triage job after the commit.
- replay: the real app again, each request repeating the key and body of a report stored
  earlier (a phone retrying): the answer must be the first one again, and nothing is stored.

Each phase sends VALID_REPORT-like bodies (tests/conftest.py; the point and the description
vary) from --threads threads of this process over http.client keep-alive connections, for
--warmup seconds (not counted) then --seconds measured, and never more than --max-requests.
The phases run --rounds times, interleaved (B I R, then R I B, ...), and the medians are
reported; ratios are only meaningful between figures of one run, as the machine is noisy and
the load generator shares its cores.

Alongside: CPU milliseconds per request of the gunicorn processes, of PostgreSQL, of Redis
and of this process (from /proc, over the measured window), and how busy the machine was.
PostgreSQL and Redis figures count every client of those servers, so other work on the
machine shows up in them.

Then an open-loop run: new reports on a fixed arrival schedule at half the rate the intake
phase reached (median), for --seconds; its p50, p99 and max latency count from when each
request was due, so queueing behind slow answers is included.

At the end: the rows in `reports` must equal the 201 answers to new keys (nothing lost,
nothing doubled), every replay must have got the first id back, and the triage queue's jobs
must name each report once (a job holds one report or a batch). Then (--profile N, 300 by
default, 0 skips) N submissions run in this process through Flask's test client (no gunicorn,
no HTTP), timed plain and then under cProfile, with their SQL statements and Redis commands
counted: where the time goes.

Scratch state only: the database stopapp_bench (BENCH_DATABASE, a stopapp_b* name; rebuilt
with postgis and pg_trgm by stopapp.dbadmin and the migrations, as the tests do, and dropped
at the end) and Redis database 13 (BENCH_REDIS_URL; flushed at start and end). The servers
listen on ports the kernel hands out (its ephemeral range). The gunicorn processes (and the
dispatcher) are stopped on exit, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import http.client
import io
import json
import math
import os
import pstats
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402 - after the path setup
from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from bench.baseline_app import SCHEMA as BASELINE_SCHEMA  # noqa: E402
from bench.baseline_app import TABLE as BASELINE_TABLE  # noqa: E402
from bench.openloop import Answer, send_open_loop  # noqa: E402
from stopapp.dbadmin import drop_database, recreate_database  # noqa: E402
from stopapp.reports.services import triage_job_reports  # noqa: E402
from tests.conftest import VALID_REPORT  # noqa: E402

# Scratch names can be moved (several people benchmarking on one PostgreSQL and Redis): the
# database name must still start with "stopapp_b", so the real ones are never touched.
BENCH_DB = os.environ.get("BENCH_DATABASE", "stopapp_bench")
DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{BENCH_DB}"
PLAIN_DSN = make_url(DATABASE_URL).set(drivername="postgresql").render_as_string(False)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# The repository's gunicorn.conf.py (what `gunicorn wsgi:app` reads in production: access log
# and all) is given to both servers, so that they differ only in the app they serve.
GUNICORN_CONFIG = REPO / "gunicorn.conf.py"
GUNICORN_SETTINGS = [
    *(["--config", str(GUNICORN_CONFIG)] if GUNICORN_CONFIG.exists() else []),
    "--workers", "2", "--threads", "4", "--no-control-socket",
]
INTAKE_PATH = "/api/v1/reports"
BASELINE_PATH = "/reports"
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
NON_2XX_SHOWN = 5
OPEN_LOOP_P99_TARGET_MS = 100


def _scratch_only(dsn: str) -> None:
    """Refuse to touch any database but the scratch one (never stopapp or stopapp_test*)."""
    name = make_url(dsn).database
    if name != BENCH_DB or not name.startswith("stopapp_b"):
        raise SystemExit(f"refusing to use database {name!r}: only stopapp_b* names are scratch")


# --- the scratch services -------------------------------------------------------------------


def flush_redis() -> None:
    conn = Redis.from_url(REDIS_URL)
    try:
        conn.flushdb()
    finally:
        conn.close()


def build_database() -> None:
    """stopapp_bench from scratch: extensions, every migration, and the baseline's table."""
    _scratch_only(DATABASE_URL)
    recreate_database(DATABASE_URL)
    from flask_migrate import upgrade

    from stopapp import create_app
    from stopapp.extensions import db

    app = create_app({"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    with psycopg.connect(PLAIN_DSN, autocommit=True) as conn:
        conn.execute(BASELINE_SCHEMA)


def drop_scratch_database() -> None:
    _scratch_only(DATABASE_URL)
    drop_database(DATABASE_URL)


def scalar(sql: str):
    with psycopg.connect(PLAIN_DSN) as conn:
        return conn.execute(sql).fetchone()[0]


# --- gunicorn -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One gunicorn master with its workers, in a session of its own (Ctrl-C spares it)."""

    name: str
    target: str
    cwd: Path
    env: dict
    ready_path: str
    # Processes that serve with it (the real app's dispatcher), each in a session of its own.
    companions: list[list[str]] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen | None = None
    log: Path | None = None
    helpers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def sessions(self) -> set[int]:
        """Session ids of its processes, whose CPU counts as the app's."""
        return {p.pid for p in [self.process, *self.helpers] if p is not None}

    @property
    def helper_sessions(self) -> set[int]:
        """Session ids of its companions (the dispatcher), also shown on their own."""
        return {p.pid for p in self.helpers}

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", *GUNICORN_SETTINGS,
                "--bind", f"127.0.0.1:{self.port}", self.target]

    def start(self, logdir: Path) -> None:
        self.port = free_port()
        self.log = logdir / f"{self.name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            for command in self.companions:
                self.helpers.append(subprocess.Popen(
                    command, cwd=self.cwd, env={**os.environ, **self.env},
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", self.ready_path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name} server did not become ready; its log ends:\n{tail}")

    def stop(self) -> None:
        """TERM the master (it stops its workers), then KILL this server's group if need be."""
        for process in [self.process, *self.helpers]:
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


# What the CPU accounting reports, in ms per request; the dispatcher's share is within app's.
CPU_FIGURES = ("app", "dispatcher", "postgres", "redis", "loadgen")


# --- CPU accounting from /proc --------------------------------------------------------------


def cpu_snapshot(server: Server) -> dict[str, float]:
    """CPU ms used so far by the server's processes (its companions also on their own),
    PostgreSQL, Redis, this process; and the machine's busy and total ms."""
    server_sessions, helper_sessions = server.sessions, server.helper_sessions
    used = {"app": 0.0, "dispatcher": 0.0, "postgres": 0.0, "redis": 0.0, "loadgen": 0.0}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue  # gone meanwhile
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        session, ticks = int(rest[3]), int(rest[11]) + int(rest[12])
        if int(entry.name) == me:
            used["loadgen"] += ticks * TICK_MS
        elif session in server_sessions:
            used["app"] += ticks * TICK_MS
            if session in helper_sessions:
                used["dispatcher"] += ticks * TICK_MS
        elif comm == "postgres":
            used["postgres"] += ticks * TICK_MS
        elif comm.startswith("redis-server"):
            used["redis"] += ticks * TICK_MS
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    used["busy"] = (sum(values[:8]) - idle) * TICK_MS
    used["total"] = sum(values[:8]) * TICK_MS
    return used


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Workload:
    """What one phase sends, and how it checks a 2xx answer (returns an error text or None)."""

    name: str
    path: str
    next_request: Callable[[int], tuple[bytes, str, object]]
    check: Callable[[object, str, bytes, int, bytes], str | None] = lambda *_: None
    prepare: Callable[[], None] = lambda: None


@dataclass
class PhaseResult:
    rps: float
    p50_ms: float
    p99_ms: float
    measured: int
    non_2xx: list[str] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0
    max_ms: float = math.nan


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def run_load(server: Server, work: Workload, args) -> PhaseResult:
    """--threads keep-alive clients for --warmup + --seconds; stops by itself."""
    lock = threading.Lock()
    stop = threading.Event()
    issued = 0
    samples: list[tuple[float, float]] = []  # (start, latency) of 2xx answers
    non_2xx: list[str] = []
    started = time.perf_counter()
    warm_end = started + args.warmup
    deadline = warm_end + args.seconds

    def client() -> None:
        nonlocal issued
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine: list[tuple[float, float]] = []
        try:
            while not stop.is_set():
                with lock:
                    if issued >= args.max_requests:
                        break
                    index = issued
                    issued += 1
                body, key, context = work.next_request(index)
                headers = {"Content-Type": "application/json", "Idempotency-Key": key}
                t0 = time.perf_counter()
                if t0 >= deadline:
                    break
                try:
                    conn.request("POST", work.path, body, headers)
                    response = conn.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    non_2xx.append(f"{work.name}: transport error {exc!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    continue
                latency = time.perf_counter() - t0
                if 200 <= response.status < 300:
                    try:
                        problem = work.check(context, key, body, response.status, answer)
                    except (ValueError, KeyError, TypeError) as exc:
                        problem = f"{work.name}: unreadable answer {exc!r} {answer[:300]!r}"
                else:
                    problem = f"{work.name}: HTTP {response.status} {answer[:300]!r}"
                if problem:
                    non_2xx.append(problem)
                else:
                    mine.append((t0, latency))
        finally:
            conn.close()
            with lock:
                samples.extend(mine)

    work.prepare()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.threads)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, warm_end - time.perf_counter()))
        before = cpu_snapshot(server)
        for thread in threads:
            thread.join()
        ended = time.perf_counter()
        after = cpu_snapshot(server)
    finally:
        stop.set()
    measured = sorted(lat for t0, lat in samples if t0 >= warm_end)
    window = ended - warm_end
    counted = len(measured) or 1
    cpu = {k: (after[k] - before[k]) / counted for k in CPU_FIGURES}
    return PhaseResult(
        rps=len(measured) / window,
        p50_ms=percentile(measured, 0.50) * 1000,
        p99_ms=percentile(measured, 0.99) * 1000,
        measured=len(measured),
        non_2xx=non_2xx,
        cpu_ms=cpu,
        busy=(after["busy"] - before["busy"]) / max(1.0, after["total"] - before["total"]),
    )


def run_open_loop(server: Server, work: Workload, rate: float, seconds: float,
                  senders: int = 48) -> PhaseResult:
    """New reports on a fixed arrival schedule (bench/openloop.py) for `seconds`: latency
    from when each request was due, so queueing behind slow answers counts."""
    lock = threading.Lock()
    latencies: list[float] = []
    problems: list[str] = []

    def answered(answer: Answer) -> None:
        problem = work.check(answer.context, answer.key, answer.sent, answer.status,
                             answer.body)
        with lock:
            if problem:
                problems.append(problem)
            else:
                latencies.append(answer.latency)

    def failed(text: str) -> None:
        with lock:
            problems.append(f"{work.name}: {text}")

    before = cpu_snapshot(server)
    start, end = send_open_loop(server.port, work.path, rate, int(rate * seconds),
                                work.next_request, answered, failed, senders=senders)
    after = cpu_snapshot(server)
    measured = sorted(latencies)
    counted = len(measured) or 1
    return PhaseResult(
        rps=len(measured) / (end - start),
        p50_ms=percentile(measured, 0.50) * 1000,
        p99_ms=percentile(measured, 0.99) * 1000,
        measured=len(measured),
        non_2xx=problems,
        cpu_ms={k: (after[k] - before[k]) / counted
                for k in CPU_FIGURES},
        busy=(after["busy"] - before["busy"]) / max(1.0, after["total"] - before["total"]),
        max_ms=(measured[-1] * 1000) if measured else math.nan,
    )


# --- the three workloads --------------------------------------------------------------------


def report_bodies(count: int = 500) -> list[bytes]:
    """VALID_REPORT with the point and the description varied: distinct rows, same size."""
    rng = random.Random(2026)
    bodies = []
    for i in range(count):
        report = copy.deepcopy(VALID_REPORT)
        report["description"] = f"{VALID_REPORT['description']} Seen again, note {i:04d}."
        report["location"]["lat"] = round(51.4927 + rng.uniform(-0.3, 0.3), 6)
        report["location"]["lon"] = round(-0.2240 + rng.uniform(-0.3, 0.3), 6)
        bodies.append(json.dumps(report).encode())
    return bodies


@dataclass
class Ledger:
    """What the real app answered to new keys, for the replays and the final check."""

    stored: list[tuple[str, bytes, str]] = field(default_factory=list)  # key, body, id
    replays_ok: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def workloads(bodies: list[bytes], ledger: Ledger) -> dict[str, Workload]:
    def fresh(index: int) -> tuple[bytes, str, object]:
        return bodies[index % len(bodies)], str(uuid.uuid4()), None

    def record(_context, key: str, body: bytes, status: int, answer: bytes) -> str | None:
        if status != 201:
            return f"intake: HTTP {status} for a new key {answer[:300]!r}"
        with ledger.lock:
            ledger.stored.append((key, body, json.loads(answer)["id"]))
        return None

    replay_pool: list[tuple[str, bytes, str]] = []

    def snapshot() -> None:  # each replay phase repeats what was stored before it
        with ledger.lock:
            replay_pool[:] = ledger.stored
        if not replay_pool:
            raise RuntimeError("nothing stored yet to replay")

    def again(index: int) -> tuple[bytes, str, object]:
        key, body, first_id = replay_pool[index % len(replay_pool)]
        return body, key, first_id

    def same_answer(first_id, _key, _body, status: int, answer: bytes) -> str | None:
        got = json.loads(answer).get("id")
        if status != 201 or got != first_id:
            return f"replay: HTTP {status}, id {got} instead of the first answer's {first_id}"
        with ledger.lock:
            ledger.replays_ok += 1
        return None

    return {
        "baseline": Workload("baseline", BASELINE_PATH, fresh),
        "intake": Workload("intake", INTAKE_PATH, fresh, record),
        "replay": Workload("replay", INTAKE_PATH, again, same_answer, snapshot),
    }


# --- profile of one request path, in process ------------------------------------------------


# Where a submission's time goes: (label, file, function) of the profile, cumulative time.
STAGES = [
    ("rate limit: count + headers (1 Redis call)", "api/ratelimit.py", "_count"),
    ("read JSON + marshmallow load", "api/parsing.py", "load_body"),
    ("submit_report", "stopapp/reports/services.py", "submit_report"),
    ("  taxonomy check (cached per process)", "stopapp/reports/services.py", "_check_types"),
    ("  contact encryption", "stopapp/reports/services.py", "_encrypted_contact"),
    ("  SQL: the one statement, autocommitted", "stopapp/db.py", "one_statement"),
    ("unit of work (nothing left to commit)", "stopapp/db.py", "unit_of_work"),
]


def profile(count: int, bodies: list[bytes], media_root: str) -> None:
    """`count` new-key submissions in this process through Flask's test client: timed plain,
    then under cProfile; prints SQL and Redis traffic and the cost of each stage."""
    from psycopg import Cursor
    from psycopg._connection_base import BaseConnection

    from stopapp import create_app
    from stopapp.extensions import db

    app = create_app({
        "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "MEDIA_ROOT": media_root,
        "RATELIMIT_REPORTS": "1000000/minute", "RATELIMIT_ENABLED": 1,
    })
    client = app.test_client()
    statements: list[str] = []
    redis = Redis.from_url(REDIS_URL)

    def redis_calls() -> dict[str, int]:
        stats = redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}

    def submit(i: int) -> None:
        response = client.post(
            INTAKE_PATH, data=bodies[i % len(bodies)], content_type="application/json",
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if response.status_code != 201:
            raise RuntimeError(f"profile: HTTP {response.status_code} {response.data[:300]!r}")

    def label(sql) -> str:  # noqa: ANN001 - str or bytes
        text = sql.decode() if isinstance(sql, bytes) else str(sql)
        table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)|(nextval)", text)
        return text.split(None, 1)[0] + (f" {table[1] or table[2]}" if table else "")

    # Counted where psycopg sends them (the intake statement does not go through SQLAlchemy's
    # execution events), transaction commands (BEGIN, COMMIT, pings) included.
    plain_execute, plain_command = Cursor.execute, BaseConnection._exec_command

    def counting_execute(self, query, *args, **kwargs):  # noqa: ANN001, ANN202
        statements.append(label(query))
        return plain_execute(self, query, *args, **kwargs)

    def counting_command(self, command, *args, **kwargs):  # noqa: ANN001, ANN202
        statements.append(label(command))
        return plain_command(self, command, *args, **kwargs)

    for i in range(50):  # warm-up: connections, prepared statements, lazy imports
        submit(i)
    Cursor.execute, BaseConnection._exec_command = counting_execute, counting_command
    calls_before = redis_calls()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        submit(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    calls = redis_calls()
    Cursor.execute, BaseConnection._exec_command = plain_execute, plain_command
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        submit(i)
    profiler.disable()
    redis.close()
    with app.app_context():
        db.engine.dispose()

    per = 1000 / count
    print(f"\nprofile: {count} submissions in this process (Flask test client, no HTTP, one "
          f"thread): {wall * per:.2f} ms wall, {cpu * per:.2f} ms CPU each")
    kinds: dict[str, int] = {}
    for kind in statements:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"  SQL statements per request: {len(statements) / count:.1f} (" + ", ".join(
        f"{n / count:g} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        + ") including any BEGIN, COMMIT and ping")
    sent = {k: n - calls_before.get(k, 0) for k, n in calls.items() if k != "info"}
    sent = {k: n for k, n in sent.items() if n}
    print(f"  Redis commands per request: {sum(sent.values()) / count:.1f} (" + ", ".join(
        f"{n / count:.2g} {k}" for k, n in sorted(sent.items(), key=lambda kv: -kv[1]))
        + "; counted server-wide, other clients included)")
    stats = pstats.Stats(profiler).stats  # (file, line, function) -> (cc, nc, tt, ct, callers)

    def cumulative(path: str, function: str) -> float:
        return sum(ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items()
                   if name == function and file.endswith(path)) * per

    total = cumulative("flask/app.py", "wsgi_app")
    costs = [(label, cumulative(path, function)) for label, path, function in STAGES]
    top = {label: ms for label, ms in costs if not label.startswith(" ")}
    submit_ms = top["submit_report"]
    costs.insert(6, ("  the rest (fingerprint, receipt, parameters)",
                     submit_ms - sum(ms for label, ms in costs[3:6])))
    costs.append(("the rest: Flask, flask-restx, Werkzeug, dump", total - sum(top.values())))
    print(f"  under cProfile (wall time, inflated by the profiler: read the shares), "
          f"{total:.2f} ms per request in wsgi_app:")
    for label, ms in costs:
        print(f"    {label:46} {ms:6.2f} ms  {ms / total:4.0%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(8)
    text = out.getvalue()
    print("  own time, top 8:")
    print("\n".join("    " + line for line in text[text.index("ncalls"):].rstrip().splitlines()))


# --- main -----------------------------------------------------------------------------------


def queued_triage() -> list[str]:
    """The report ids named by the triage queue's jobs (a job holds one report or a batch),
    repeats kept."""
    redis = Redis.from_url(REDIS_URL)
    try:
        return [report_id for job in Queue("triage", connection=redis).jobs
                for report_id in triage_job_reports(job)]
    finally:
        redis.close()


def wait_for_dispatcher(timeout_s: float = 30) -> float:
    """Seconds until the triage queue's jobs name every report (or timeout_s)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if len(queued_triage()) >= scalar("SELECT count(*) FROM reports"):
            break
        time.sleep(0.5)
    return time.monotonic() - started


def git_state() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "api", "stopapp",
                                      "wsgi.py", "migrations").splitlines()]
    return head + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


def summary(results: list[PhaseResult]) -> tuple[float, float, float]:
    return (statistics.median(r.rps for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results))


def _interrupt(*_) -> None:
    """Turn a signal into KeyboardInterrupt, which main's clean-up handles."""
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first")
    parser.add_argument("--threads", type=int, default=16, help="client threads")
    parser.add_argument("--max-requests", type=int, default=200_000,
                        help="per phase, warm-up included")
    parser.add_argument("--profile", type=int, default=300, metavar="N",
                        help="then profile N submissions in process (0: skip)")
    args = parser.parse_args()

    print("command: " + shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]))
    print(f"code: {git_state()}; {os.cpu_count()} CPUs; "
          f"{args.threads} client threads, {args.warmup:g} s warm-up + {args.seconds:g} s "
          f"per phase, {args.rounds} rounds")

    # Ctrl-C and SIGTERM unwind through the clean-up below, even where SIGINT came ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    scratch = tempfile.TemporaryDirectory(prefix="bench-intake-")
    logdir = Path(scratch.name)
    subject = Server("intake", "wsgi:app", REPO, {
        "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL,
        "RATELIMIT_REPORTS": "1000000/minute", "RATELIMIT_ENABLED": "1",
        "MEDIA_ROOT": str(logdir / "media"),
    }, "/readyz", companions=[[sys.executable, "-m", "workers.dispatcher"]])
    baseline = Server("baseline", "baseline_app:app", REPO / "bench",
                      {"BENCH_BASELINE_DSN": PLAIN_DSN}, "/healthz")
    servers = {"baseline": baseline, "intake": subject, "replay": subject}
    bodies = report_bodies()
    ledger = Ledger()
    work = workloads(bodies, ledger)
    results: dict[str, list[PhaseResult]] = {name: [] for name in servers}
    failures: list[str] = []
    try:
        flush_redis()
        build_database()
        for server in (baseline, subject):
            server.start(logdir)
            print(f"{server.name} server: (cd {os.path.relpath(server.cwd, REPO)} && "
                  f"{shlex.join(server.command)})")
        # The replays need stored reports: the first round does intake before replay.
        orders = [["baseline", "intake", "replay"], ["replay", "intake", "baseline"]]
        for round_no in range(args.rounds):
            for name in orders[round_no % 2]:
                result = run_load(servers[name], work[name], args)
                results[name].append(result)
                cpu = result.cpu_ms
                print(
                    f"  round {round_no + 1} {name:8} {result.rps:7.0f} req/s  "
                    f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                    f"({result.measured} measured, {len(result.non_2xx)} failed)  "
                    f"CPU ms/req: app {cpu['app']:.2f} (dispatcher {cpu['dispatcher']:.2f}), "
                    f"postgres {cpu['postgres']:.2f}, "
                    f"redis {cpu['redis']:.2f}, loadgen {cpu['loadgen']:.2f}; "
                    f"machine busy {result.busy:.0%}",
                    flush=True,
                )
                for line in result.non_2xx[:NON_2XX_SHOWN]:
                    print(f"    {line}")
                if result.non_2xx:
                    failures.append(f"{len(result.non_2xx)} failed answers in {name}")
        # Open loop at half the rate new reports reached: the latency a reporter sees when the
        # service is busy but not saturated.
        open_rate = 0.5 * summary(results["intake"])[0]
        opened = run_open_loop(subject, work["intake"], open_rate, args.seconds)
        print(f"  open loop: {open_rate:.0f} new reports/s due for {args.seconds:g} s: "
              f"{opened.measured} answered 201, p50 {opened.p50_ms:.1f} ms, "
              f"p99 {opened.p99_ms:.1f} ms (target <= {OPEN_LOOP_P99_TARGET_MS} ms), "
              f"max {opened.max_ms:.1f} ms, {len(opened.non_2xx)} failed; "
              f"machine busy {opened.busy:.0%}", flush=True)
        for line in opened.non_2xx[:NON_2XX_SHOWN]:
            print(f"    {line}")
        if opened.non_2xx:
            failures.append(f"{len(opened.non_2xx)} failed answers in the open loop")
        drained = wait_for_dispatcher()
        for server in (baseline, subject):
            server.stop()

        base_rps, base_p50, base_p99 = summary(results["baseline"])
        print(f"\nmedians of {args.rounds} rounds:")
        for name in ("intake", "replay"):
            rps, p50, p99 = summary(results[name])
            pairs = zip(results[name], results["baseline"], strict=True)
            paired = [r.rps / b.rps for r, b in pairs]
            print(f"{name}: {rps:.0f} req/s (p50 {p50:.0f} ms, p99 {p99:.0f} ms) vs baseline "
                  f"{base_rps:.0f} req/s (p50 {base_p50:.0f} ms, p99 {base_p99:.0f} ms) -> "
                  f"{rps / base_rps:.2f}x of the bare INSERT "
                  f"(rounds: {min(paired):.2f}-{max(paired):.2f}x)")
        for name in servers:
            cpu = {k: statistics.median(r.cpu_ms[k] for r in results[name])
                   for k in CPU_FIGURES}
            total = sum(v for k, v in cpu.items() if k != "dispatcher")  # within app
            print(f"  CPU ms per request, {name:8}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in cpu.items()) + f" (total {total:.2f})")

        rows = scalar("SELECT count(*) FROM reports")
        ids = {report_id for _key, _body, report_id in ledger.stored}
        queued = queued_triage()
        baseline_rows = scalar(f"SELECT count(*) FROM {BASELINE_TABLE}")
        bad_replays = sum(len(r.non_2xx) for r in results["replay"])
        ok = (rows == len(ledger.stored) == len(ids) == len(queued) == len(set(queued))
              and set(queued) == ids and not bad_replays)
        print(f"check: {rows} rows in reports, {len(ledger.stored)} answers 201 to new keys "
              f"({len(ids)} distinct ids), {len(queued)} reports in the triage jobs queued by the "
              f"dispatcher ({len(set(queued))} distinct) "
              f"({drained:.1f} s after the last request); "
              f"{ledger.replays_ok} replays answered with the first id, {bad_replays} not"
              f" -> {'OK, nothing lost, nothing doubled' if ok else 'MISMATCH'}"
              f" (baseline table: {baseline_rows} rows)")
        if not ok:
            failures.append("row count check failed")
        if args.profile:
            profile(args.profile, bodies, str(logdir / "media"))
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        failures.append("interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in (baseline, subject):
            server.stop()
        flush_redis()
        drop_scratch_database()
        scratch.cleanup()
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

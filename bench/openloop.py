"""Open-loop load: POST requests on a fixed arrival schedule, shared by intake.py and e2e.py.

Request i is due at start + i / rate, whatever happened to the requests before it: a slow
answer does not slow the arrivals (closed-loop clients would wait, and hide the queueing a
real reporter meets). `senders` threads with keep-alive connections take the requests in
order; each sleeps until its request is due and sends it. The latency of an answer counts
from when its request was due, so time spent waiting for a free sender counts too (no
coordinated omission).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# gunicorn drops keep-alive connections idle for 2 s: reconnect before reusing one idle longer.
IDLE_RECONNECT_S = 1.5


@dataclass(frozen=True)
class Answer:
    """One answered request: its index, when it was due and answered (perf_counter), and what
    came back, with what was sent (`context` is whatever next_request gave with it)."""

    index: int
    due: float
    answered: float
    status: int
    body: bytes
    key: str
    sent: bytes
    context: object

    @property
    def latency(self) -> float:
        return self.answered - self.due


def send_open_loop(
    port: int,
    path: str,
    rate: float,
    total: int,
    next_request: Callable[[int], tuple[bytes, str, object]],
    on_answer: Callable[[Answer], None],
    on_error: Callable[[str], None],
    *,
    senders: int = 48,
    start_delay_s: float = 0.2,
) -> tuple[float, float]:
    """POST `total` requests to 127.0.0.1:`port``path` at `rate` per second.

    next_request(i) gives (JSON body, Idempotency-Key, context). on_answer is called (from the
    sender threads) for every HTTP answer, on_error with a text for every transport error.
    Returns (start, end): perf_counter times of the first request's due time and of the last
    answer.
    """
    lock = threading.Lock()
    next_index = 0
    start = time.perf_counter() + start_delay_s

    def sender() -> None:
        nonlocal next_index
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        last_used = time.perf_counter()
        try:
            while True:
                with lock:
                    index = next_index
                    next_index += 1
                if index >= total:
                    return
                due = start + index / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                if time.perf_counter() - last_used > IDLE_RECONNECT_S:
                    conn.close()  # http.client reconnects on the next request
                body, key, context = next_request(index)
                headers = {"Content-Type": "application/json", "Idempotency-Key": key}
                try:
                    conn.request("POST", path, body, headers)
                    response = conn.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    on_error(f"transport error {exc!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    continue
                last_used = time.perf_counter()
                on_answer(Answer(index, due, last_used, response.status, answer, key, body,
                                 context))
        finally:
            conn.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return start, time.perf_counter()

"""Rate limits on the public endpoints (flask-limiter, counted in Redis).

The bucket key is a keyed, truncated hash of the client address, not the address itself:
enough to count requests, useless for finding a reporter in Redis.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import os
import time

from flask import after_this_request, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from werkzeug.exceptions import TooManyRequests

from stopapp.extensions import redis_client, settings

log = logging.getLogger(__name__)


def client_key() -> str:
    """A keyed hash of the client address, for rate-limit buckets."""
    address = (request.remote_addr or "unknown").encode()
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:24]


def report_key() -> str:
    """One bucket per report id, so guessing a receipt is throttled from any number of clients."""
    return "report:" + str((request.view_args or {}).get("report_id", ""))


def setting(name: str):
    """A limit read from the configuration when the request comes, not at import."""
    return lambda: getattr(current_app.extensions["stopapp.config"], name)


def failed_lookup(response) -> bool:
    """Only failed receipt checks count against the guessing limits."""
    return response.status_code == 404


limiter = Limiter(key_func=client_key, default_limits=[])


@limiter.request_filter
def _counted_in_one_trip() -> bool:
    """flask-limiter's own hooks skip the views that SingleTripLimiter counts (below): they
    would only resolve an empty list of limits, at about a tenth of a submission's CPU."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "single_trip_limited", False)


def skip_limiter_hooks_for_single_trip(app) -> None:  # noqa: ANN001 - a Flask app
    """Wrap flask-limiter's request hooks so that they do not run at all for the views that
    SingleTripLimiter counts (the filter above still costs most of the hooks' work).

    Call after limiter.init_app(app). Hooks it does not recognise are left as they are.
    """
    own = {
        limiter._check_request_limit,  # noqa: SLF001
        getattr(limiter, "_Limiter__release_context", None),
    }

    def is_limiters(hook) -> bool:  # noqa: ANN001
        target = getattr(hook, "func", hook)  # __inject_headers is registered as a partial
        return hook in own or getattr(target, "__qualname__", "") == "Limiter.__inject_headers"

    def skipping(hook, passthrough: bool):  # noqa: ANN001, ANN202
        @functools.wraps(getattr(hook, "func", hook))
        def run(*args):
            if _counted_in_one_trip():
                return args[0] if passthrough else None
            return hook(*args)

        return run

    for registry, passthrough in ((app.before_request_funcs, False),
                                  (app.after_request_funcs, True),
                                  (app.teardown_request_funcs, False)):
        hooks = registry.get(None, [])
        registry[None] = [skipping(h, passthrough) if is_limiters(h) else h for h in hooks]


# --- one round trip: the submission endpoint's limits -------------------------------------

# Every limit of a request counted in one script call: INCR each fixed-window bucket, start
# its window (EXPIRE) on its first hit, and return each count with the seconds its window has
# left. flask-limiter needs a command per limit plus two more for the response headers.
_HIT_SCRIPT = """
local answer = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
        ttl = tonumber(ARGV[i])
        redis.call('EXPIRE', key, ttl)
    end
    answer[2 * i - 1] = count
    answer[2 * i] = ttl
end
return answer
"""
# After a failed call, Redis is left alone this long and the counting done in memory.
REDIS_RETRY_S = 5.0


class _AppState:
    """Per app (so per Redis): the registered script, the memory fallback, the outage clock,
    and the limiter's own idle connections to Redis."""

    def __init__(self) -> None:
        client = redis_client()
        self.script = client.register_script(_HIT_SCRIPT)
        self.memory = MemoryStorage()
        self.redis_down_until = 0.0
        self.pool = client.connection_pool
        self.idle: list[AbstractConnection] = []
        self.pid = os.getpid()

    def hit(self, keys: list[str], expiries: list[int]) -> list[int]:
        """The script's answer for these buckets: one EVALSHA, one round trip.

        Sent on a connection of the limiter's own, made with the client's pool settings (the
        same server, database and timeouts), rather than through `self.script(...)`: redis-py's
        command path (its per-command bookkeeping and metrics, the pool's checkout, which polls
        the socket for readiness, and a retry wrapper that the from_url client leaves at no
        retry) cost about as much CPU as the rest of the limiter together. A script Redis has
        forgotten (a restart, SCRIPT FLUSH) is loaded again by the registered Script.
        Raises RedisError when Redis cannot answer.
        """
        if self.pid != os.getpid():  # a forked child must not share its parent's sockets
            self.idle, self.pid = [], os.getpid()
        try:
            conn, reused = self.idle.pop(), True  # atomic: each thread gets its own connection
        except IndexError:
            conn, reused = self.pool.connection_class(**self.pool.connection_kwargs), False
        command = conn.pack_command("EVALSHA", self.script.sha, len(keys), *keys, *expiries)
        try:
            try:
                return _send(conn, command)
            except RedisConnectionError:
                if not reused:
                    raise
                # The server may have closed an idle connection meanwhile (a restart), which
                # the pool's readiness poll would have caught before lending it. The failed
                # write or the end of stream left the script unrun and the connection closed;
                # sent again, it goes out on a new socket.
                return _send(conn, command)
        except NoScriptError:
            return self.script(keys=keys, args=expiries)
        finally:
            self.idle.append(conn)


def _send(conn: AbstractConnection, command: list[bytes]) -> list[int]:
    """Send a packed command and read its answer (the connection reconnects if it was closed,
    and closes itself on a failed read or write)."""
    conn.send_packed_command(command)
    return conn.read_response()


class SingleTripLimiter:
    """Fixed-window limits counted in Redis with one script call per request.

    Same contract as flask-limiter's limits on the other endpoints: buckets keyed by
    `client_key`, 429 with Retry-After over a limit, X-RateLimit-* and Retry-After headers on
    every answer (taken from the same call), RATELIMIT_ENABLED honoured, and while Redis is
    unreachable the counting falls back to this process's memory (the request is never refused
    for want of Redis).
    """

    def limit(self, setting_name: str):
        """Decorator for a view: count the request against the limits in `setting_name`."""

        def decorator(view):
            @functools.wraps(view)
            def wrapped(*args, **kwargs):
                if current_app.config.get("RATELIMIT_ENABLED", True):
                    items = _parsed(getattr(settings(), setting_name))
                    self._count(items, f"{request.endpoint}:{client_key()}")
                return view(*args, **kwargs)

            # Read by the request filter above (functools.wraps carries it to outer wrappers).
            wrapped.single_trip_limited = True
            return wrapped

        return decorator

    @staticmethod
    def _state() -> _AppState:
        state = current_app.extensions.get("stopapp.single_trip_limiter")
        if state is None:
            state = current_app.extensions["stopapp.single_trip_limiter"] = _AppState()
        return state

    def _count(self, items: tuple[RateLimitItem, ...], bucket: str) -> None:
        state = self._state()
        keys = [f"LIMITER/1trip/{bucket}/{item.amount}/{item.multiples}/{item.GRANULARITY.name}"
                for item in items]
        answer = None
        if time.monotonic() >= state.redis_down_until:
            try:
                answer = state.hit(keys, [item.get_expiry() for item in items])
            except RedisError as exc:
                state.redis_down_until = time.monotonic() + REDIS_RETRY_S
                log.warning(
                    "rate limits counted in memory for %.0f s: Redis unreachable (%s)",
                    REDIS_RETRY_S, type(exc).__name__,
                )
        if answer is not None:
            counts = [(int(answer[2 * i]), int(answer[2 * i + 1])) for i in range(len(items))]
        else:  # the same counting in this process's memory
            counts = []
            for item, key in zip(items, keys, strict=True):
                count = state.memory.incr(key, item.get_expiry())
                left = math.ceil(state.memory.get_expiry(key) - time.time())
                counts.append((count, max(0, left)))
        self._respond(items, counts)

    @staticmethod
    def _respond(items: tuple[RateLimitItem, ...], counts: list[tuple[int, int]]) -> None:
        """Headers from the tightest limit; 429 once any limit is over."""
        states = [(item.amount - count, ttl, item) for item, (count, ttl) in zip(
            items, counts, strict=True)]
        remaining, ttl, item = min(states, key=lambda state: (state[0], -state[1]))
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(int(time.time()) + ttl),
            "Retry-After": str(ttl),
        }

        @after_this_request
        def add_headers(response):
            response.headers.update(headers)
            return response

        if remaining < 0:
            raise TooManyRequests(f"{item.amount} per {item.multiples} {item.GRANULARITY.name}",
                                  retry_after=ttl)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


single_trip_limiter = SingleTripLimiter()

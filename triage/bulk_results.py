"""The results of a bulk action, kept for the page the browser is sent to after it.

Kept in Redis for a quarter of an hour under a random token (the `results` parameter of the
queue's URL), for the user who acted only: a reload or the back button shows them again
instead of sending the action a second time. They hold report references and the reasons for
refusals, nothing a reporter wrote.
"""

from __future__ import annotations

import json
import logging
import secrets

from flask import request
from redis.exceptions import RedisError

from stopapp.extensions import redis_client

log = logging.getLogger(__name__)

# How long the results of a bulk action can be shown again.
RESULTS_KEPT_S = 15 * 60
# The query parameter that carries their token to the queue.
RESULTS_PARAM = "results"


def query_without_results() -> dict[str, list[str]]:
    """This request's query string without the results' token (where the queue's own links
    and the bulk form lead, so that they never carry it on)."""
    return {key: request.args.getlist(key) for key in request.args if key != RESULTS_PARAM}


def _key(token: str) -> str:
    return f"triage:bulk-results:{token}"


def keep_results(user_id: str, summary: dict) -> str | None:
    """Keep `summary` for the user whose id is `user_id`: its token, or None when Redis cannot
    keep it."""
    token = secrets.token_urlsafe(16)
    try:
        redis_client().set(_key(token), json.dumps({"user": user_id, "results": summary}),
                           ex=RESULTS_KEPT_S)
    except RedisError as exc:
        log.warning("bulk results not kept: Redis unreachable (%s)", type(exc).__name__)
        return None
    return token


def kept_results(user_id: str, token: str) -> dict | None:
    """The results kept under `token` if `user_id` made them and they are still kept."""
    try:
        kept = redis_client().get(_key(token))
    except RedisError as exc:
        log.warning("bulk results not read: Redis unreachable (%s)", type(exc).__name__)
        return None
    if kept is None:
        return None
    kept = json.loads(kept)
    return kept["results"] if kept["user"] == user_id else None

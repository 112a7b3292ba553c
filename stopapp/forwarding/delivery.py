"""Delivering a forward over SMTP, so that it can be trusted.

- Nothing is `sent` unless the server accepted the message (its reply to DATA is kept).
- Before talking SMTP, the job commits the attempt (`attempts` + 1, `sending_since`). If the
  worker dies after the server accepted the message but before the outcome is written, the
  next run finds `sending_since` still set and sends again with the same Message-ID: at most
  that one message repeats, and the recipient can recognise the repeat by its Message-ID.
- A forward already `sent` (or `failed`) is never sent by a repeated job; a PostgreSQL
  advisory lock keeps two workers from sending the same forward at once.
- Connection failures, timeouts and 4xx answers are transient: `retrying`, and the job raises
  for RQ to run it again after the next delay; 5xx answers, and transient failures once the
  attempts are used up, are `failed` with the server's reply.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select

from stopapp.config import Config
from stopapp.extensions import db, settings
from stopapp.forwarding.message import Envelope
from stopapp.forwarding.models import Forward, ForwardStatus
from stopapp.reports.models import utcnow

log = logging.getLogger(__name__)

# Longest server reply kept on the row.
MAX_REPLY_CHARS = 1000


class TransientDeliveryError(Exception):
    """Raised by the job after a transient failure was recorded, so that RQ retries it."""


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    transient: bool
    reply: str


def _reply(code: int | None, text: bytes | str | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text or ''}".strip()[:MAX_REPLY_CHARS]


@contextmanager
def forward_lock(forward_id: uuid.UUID) -> Iterator[bool]:
    """Hold a session advisory lock on the forward, on a connection of its own, while the
    block runs; yields False if another worker holds it. A dead worker's lock dies with its
    connection."""
    key = int.from_bytes(forward_id.bytes[:8], "big", signed=True)
    with db.engine.connect() as connection:
        locked = connection.scalar(select(func.pg_try_advisory_lock(key)))
        connection.commit()
        try:
            yield bool(locked)
        finally:
            if locked:
                connection.scalar(select(func.pg_advisory_unlock(key)))
                connection.commit()


def get_forward(forward_id: uuid.UUID) -> Forward:
    return db.session.get(Forward, forward_id)


def start_attempt(forward_id: uuid.UUID) -> Forward | None:
    """Count an attempt and mark the forward as being sent; None if there is nothing to do
    (it is sent, failed, or gone). The caller commits before talking SMTP."""
    forward = db.session.get(Forward, forward_id, with_for_update=True)
    if forward is None or forward.status in (ForwardStatus.SENT, ForwardStatus.FAILED):
        return None
    if forward.sending_since is not None:
        # Possibly accepted by the server already: this run repeats it with the same Message-ID.
        log.warning("forward %s: the previous attempt stopped while sending; sending again "
                    "with the same Message-ID", forward_id)
    forward.attempts += 1
    forward.sending_since = utcnow()
    db.session.flush()
    return forward


def transmit(envelope: Envelope, config: Config) -> Outcome:
    """Send over SMTP (STARTTLS and login when configured); classify what happened."""
    local_name = envelope.sender.rpartition("@")[2] or "localhost"
    try:
        smtp = smtplib.SMTP(config.SMTP_HOST, int(config.SMTP_PORT), local_hostname=local_name,
                            timeout=config.SMTP_TIMEOUT_S)
    except (OSError, smtplib.SMTPException) as exc:
        return _failure(exc)
    try:
        smtp.ehlo()
        if int(config.SMTP_STARTTLS):
            smtp.starttls(context=ssl.create_default_context(cafile=config.SMTP_CA_FILE or None))
            smtp.ehlo()
        if config.SMTP_USERNAME:
            smtp.login(config.SMTP_USERNAME, config.SMTP_PASSWORD)
        code, text = smtp.mail(envelope.sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, text, envelope.sender)
        refused = {}
        for address in envelope.recipients:
            code, text = smtp.rcpt(address)
            if code not in (250, 251):
                refused[address] = (code, text)
        if len(refused) == len(envelope.recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        # data() raises only when DATA itself is refused; the answer to the message is ours
        # to check, and only 250 means the server took responsibility for it.
        code, text = smtp.data(envelope.as_bytes())
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        return _failure(exc)
    # Accepted: whatever happens from here on (QUIT refused, connection lost) changes nothing.
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
    reply = _reply(code, text)
    if refused:
        reply += "; refused: " + ", ".join(f"{a} ({_reply(*r)})" for a, r in refused.items())
    return Outcome(accepted=True, transient=False, reply=reply[:MAX_REPLY_CHARS])


def _failure(exc: Exception) -> Outcome:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        transient = any(400 <= code < 500 for code, _ in answers)
        return Outcome(False, transient, "; ".join(_reply(*a) for a in answers)[:MAX_REPLY_CHARS])
    if isinstance(exc, smtplib.SMTPResponseException):
        return Outcome(False, 400 <= exc.smtp_code < 500, _reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        # Refused, reset, timed out, name not resolved: the server may well be back later.
        return Outcome(False, True, f"{type(exc).__name__}: {exc}"[:MAX_REPLY_CHARS])
    # STARTTLS or AUTH not offered and the like: configuration, not luck.
    return Outcome(False, False, f"{type(exc).__name__}: {exc}"[:MAX_REPLY_CHARS])


def record_outcome(forward_id: uuid.UUID, outcome: Outcome, encrypted: bool | None) -> str:
    """Write what happened; returns the new status."""
    forward = db.session.get(Forward, forward_id, with_for_update=True)
    forward.sending_since = None
    if outcome.accepted:
        forward.status = ForwardStatus.SENT.value
        forward.sent_at = utcnow()
        forward.smtp_reply = outcome.reply
        forward.encrypted = encrypted
        forward.last_error = None
    elif outcome.transient and forward.attempts <= len(settings().forward_retry_intervals_s):
        forward.status = ForwardStatus.RETRYING.value
        forward.last_error = outcome.reply
    else:
        forward.status = ForwardStatus.FAILED.value
        suffix = f" (after {forward.attempts} attempts)" if outcome.transient else ""
        forward.last_error = (outcome.reply + suffix)[:MAX_REPLY_CHARS]
    db.session.flush()
    return forward.status

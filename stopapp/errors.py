"""The domain's errors: one problem family, mapped to HTTP in one place (api/problem.py).

Services raise these; they know nothing of HTTP beyond the status each one stands for, so
that the API, the web queue and the CLI can all report them the same way.
"""

from __future__ import annotations


class ProblemError(Exception):
    """Base of every error a client may see. Rendered as RFC 9457 problem+json."""

    status = 500
    title = "Internal error"
    type_slug = "internal-error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}


class BadRequestError(ProblemError):
    status = 400
    title = "Malformed request"
    type_slug = "malformed-request"


class NotFoundError(ProblemError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class ConflictError(ProblemError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class PayloadTooLargeError(ProblemError):
    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class UnsupportedMediaTypeError(ProblemError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class ValidationError(ProblemError):
    """The input was well formed but breaks a rule; `errors` maps field paths to messages."""

    status = 422
    title = "Validation failed"
    type_slug = "validation-failed"


class IdempotencyMismatchError(ValidationError):
    title = "Idempotency-Key reused with a different request"
    type_slug = "idempotency-key-reused"


class ServiceUnavailableError(ProblemError):
    status = 503
    title = "Service unavailable"
    type_slug = "service-unavailable"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 30) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})

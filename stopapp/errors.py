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
        extensions: dict | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        # Extra members of the problem object (RFC 9457, 3.2), e.g. the current version on 412.
        self.extensions = extensions or {}


class BadRequestError(ProblemError):
    status = 400
    title = "Malformed request"
    type_slug = "malformed-request"


class UnauthorizedError(ProblemError):
    """No credentials, or credentials that do not identify an active staff member."""

    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="stopapp"'})


class ForbiddenError(ProblemError):
    """The caller is known but their role does not allow this."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFoundError(ProblemError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class ConflictError(ProblemError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class PreconditionFailedError(ProblemError):
    """If-Match named a version that is no longer current; nothing was changed."""

    status = 412
    title = "Precondition failed"
    type_slug = "stale-version"


class PreconditionRequiredError(ProblemError):
    """A change was sent without If-Match."""

    status = 428
    title = "Precondition required"
    type_slug = "if-match-required"


class TooManyRequestsError(ProblemError):
    """Refused for now; `retry_after_s` says when trying again can succeed."""

    status = 429
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: int) -> None:
        retry_after_s = max(1, int(retry_after_s))
        super().__init__(
            detail,
            headers={"Retry-After": str(retry_after_s)},
            extensions={"retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


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

"""Typed errors. Each carries its HTTP status and a stable problem ``type`` (RFC 9457), so a
business conflict reaches a JSON client as a 4xx problem and never as a 500."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://timebank.dev/problems/"
RETRY_AFTER_SECONDS = 2


class TimebankError(Exception):
    status_code: ClassVar[int] = 400
    kind: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.kind

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def field_error(key: str, message: str, source: str = "body") -> dict[str, str]:
    """One entry of a validation problem's ``errors``: the same shape Litestar gives for the
    request checks it makes itself, so clients see one shape whoever found the fault."""
    return {"key": key, "message": message, "source": source}


class ValidationFailed(TimebankError):
    status_code = 422
    kind = "validation"
    title = "The request is not valid"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra.setdefault("errors", [field_error(field, detail)])
        super().__init__(detail, **extra)


class NotFound(TimebankError):
    status_code = 404
    kind = "not-found"
    title = "Not found"


class Unauthenticated(TimebankError):
    status_code = 401
    kind = "unauthenticated"
    title = "Sign in first"


class RateLimited(TimebankError):
    status_code = 429
    kind = "rate-limited"
    title = "Too many attempts"


class Forbidden(TimebankError):
    status_code = 403
    kind = "forbidden"
    title = "Not allowed"


class UnsupportedMediaType(TimebankError):
    status_code = 415
    kind = "unsupported-media-type"
    title = "Unsupported media type"


class Conflict(TimebankError):
    status_code = 409
    kind = "conflict"
    title = "Conflict"


class LimitExceeded(Conflict):
    kind = "limit-exceeded"
    title = "An account limit would be exceeded"


class InvalidTransition(Conflict):
    kind = "invalid-transition"
    title = "Not possible in the current state"


class IdempotencyMismatch(Conflict):
    kind = "idempotency-mismatch"
    title = "Idempotency key reused with a different request"


class ServiceUnavailable(TimebankError):
    status_code = 503
    kind = "unavailable"
    title = "Temporarily unavailable"


class Overloaded(TimebankError):
    """More work of one kind waiting than the service takes on (password hashing): try again
    shortly. Not ``ServiceUnavailable``, which means the database is away."""

    status_code = 503
    kind = "overloaded"
    title = "Busy"


def database_unavailable() -> ServiceUnavailable:
    """What a request is answered while the database is away: 503 with ``Retry-After``."""
    return ServiceUnavailable(
        "the database is unavailable; please retry shortly", retry_after=RETRY_AFTER_SECONDS
    )

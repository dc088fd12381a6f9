"""Typed errors. Each carries its HTTP status and a stable problem ``type`` (RFC 9457), so a
business conflict reaches a JSON client as a 4xx problem and never as a 500."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://timebank.dev/problems/"
RETRY_AFTER_SECONDS = 2


class TimebankError(Exception):
    """A refusal a client may be shown. Each kind of refusal is a subclass that names, in its
    class line, its HTTP ``status`` (else its parent's), its problem ``kind`` (the end of the
    problem's ``type``) and its ``title``."""

    status_code: ClassVar[int] = 400
    kind: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init_subclass__(
        cls, *, status: int | None = None, kind: str, title: str, **rest: Any
    ) -> None:
        super().__init_subclass__(**rest)
        if status is not None:
            cls.status_code = status
        cls.kind = kind
        cls.title = title

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


UNDECODABLE = "what was sent is not UTF-8 text"


class ValidationFailed(
    TimebankError, status=422, kind="validation", title="The request is not valid"
):
    """A value the request sent is refused; ``field`` names it in the problem's ``errors``."""

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None:
            extra.setdefault("errors", [field_error(field, detail)])
        super().__init__(detail, **extra)


class NotFound(TimebankError, status=404, kind="not-found", title="Not found"):
    """What the request names is not there, or not for this caller to see."""


class Unauthenticated(TimebankError, status=401, kind="unauthenticated", title="Sign in first"):
    """No session or token, or one that has ended."""


class RateLimited(TimebankError, status=429, kind="rate-limited", title="Too many attempts"):
    """Too many failed tries from here: the next waits for the delay in ``Retry-After``."""


class Forbidden(TimebankError, status=403, kind="forbidden", title="Not allowed"):
    """The caller is known, and this is not theirs to do or see."""


class UnsupportedMediaType(
    TimebankError, status=415, kind="unsupported-media-type", title="Unsupported media type"
):
    """The body is not in a type the route reads."""


class Conflict(TimebankError, status=409, kind="conflict", title="Conflict"):
    """The request is valid but clashes with how things stand."""


class LimitExceeded(Conflict, kind="limit-exceeded", title="An account limit would be exceeded"):
    """An account would pass its floor or its ceiling."""


class InvalidTransition(
    Conflict, kind="invalid-transition", title="Not possible in the current state"
):
    """The exchange (or reservation, or transfer) is not in a state that allows this."""


class IdempotencyMismatch(
    Conflict,
    kind="idempotency-mismatch",
    title="Idempotency key reused with a different request",
):
    """The idempotency key was first sent with another request."""


class ServiceUnavailable(
    TimebankError, status=503, kind="unavailable", title="Temporarily unavailable"
):
    """The database is away."""


class Overloaded(TimebankError, status=503, kind="overloaded", title="Busy"):
    """More work of one kind waiting than the service takes on (password hashing): try again
    shortly. Not ``ServiceUnavailable``, which means the database is away."""


def database_unavailable() -> ServiceUnavailable:
    """What a request is answered while the database is away: 503 with ``Retry-After``."""
    return ServiceUnavailable(
        "the database is unavailable; please retry shortly", retry_after=RETRY_AFTER_SECONDS
    )

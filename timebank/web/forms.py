"""What the forms that record something share: the values as sent (strings), a one-time key
(the API's idempotency key, so a double tap records once), how long, when, what kind of help
and a note, and the faults found, each kept beside its field."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar

from litestar.datastructures import FormMultiDict

from timebank.errors import IdempotencyMismatch, TimebankError

T = TypeVar("T")


def sent_text(form: FormMultiDict, name: str) -> str:
    """A field as sent: text, or nothing (a file or a missing field)."""
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def new_key() -> str:
    return str(uuid.uuid4())


class SentFields(TypedDict):
    key: str
    duration: str
    service_date: str
    category: str
    description: str


@dataclass
class KeyedForm:
    """A form that records something once: its one-time key and the fields every such form
    has (``_macros.html``'s ``when_and_what``)."""

    key: str
    duration: str = ""
    service_date: str = ""
    category: str = ""
    description: str = ""
    minutes: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notice: str | None = None

    @staticmethod
    def sent(form: FormMultiDict) -> SentFields:
        """The shared fields as sent, the key cut to its longest (or a fresh one)."""
        return {
            "key": sent_text(form, "key")[:255] or new_key(),
            "duration": sent_text(form, "duration"),
            "service_date": sent_text(form, "service_date"),
            "category": sent_text(form, "category"),
            "description": sent_text(form, "description"),
        }

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def used_before(self) -> None:
        """The key was first sent with something else: say so, and give the form a new key
        (sent again, it records once, as what it now says)."""
        self.notice = (
            "This form was already used to record something else. Check your exchanges before"
            " sending it again: it now has a fresh key."
        )
        self.key = new_key()


async def send_once(
    form: KeyedForm,
    send: Callable[[], Awaitable[T]],
    explain: Callable[[TimebankError], None],
    refusals: tuple[type[TimebankError], ...],
) -> tuple[T | None, int]:
    """Send what a form says under its one-time key: the answer (and 200), or None and the
    status to re-render the form with, its faults put beside their fields by ``explain``."""
    try:
        return await send(), 200
    except IdempotencyMismatch:
        form.used_before()
        return None, 409
    except refusals as error:
        explain(error)
        return None, error.status_code

"""How failed sign-ins slow further tries: delays that grow, never a lockout a stranger can
impose on someone else. Pure rules; the counters live in ``sign_in_counters``.

Each try is counted under three keys, each a keyed hash (HMAC-SHA256 under a key kept in the
database), so the counters hold neither emails nor addresses:

- *client*: the client address (an IPv6 address by its /64, the block one subscriber gets);
- *account from client*: the normalised email and the client address together;
- *account*: the normalised email, from everywhere.

A key allows a number of free failures; after that, each further try waits a delay that doubles
with every failure (5 s, 10 s, 20 s, …) up to a cap, counted from the last failure. *Client* and
*account from client* wait up to 15 minutes: they only slow whoever makes the failures.
*Account* waits at most ``ACCOUNT_DELAY_CAP`` seconds, and not at all from an address the
account signed in from in the last 30 days: guesses from elsewhere slow the owner briefly at
worst. A failure count is forgotten a day after its last failure. While a delay runs, sign-in
answers 429 with ``Retry-After``; the try is not counted. Each try is counted as a failure
before its password is checked (and taken back if it succeeds), with the counters locked, so
parallel tries cannot all pass one limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

FIRST_DELAY = 5
CLIENT_DELAY_CAP = 15 * 60
ACCOUNT_DELAY_CAP = 30
# Failures from everywhere before the account-wide delay starts, per free failure of one client.
ACCOUNT_FREE_FACTOR = 4


@dataclass(frozen=True)
class Gate:
    """One key's rule: failures allowed without delay, and the longest delay."""

    scope: str
    free: int
    cap: int


@dataclass(frozen=True)
class Counter:
    """A key's counter as read: failures so far, the last failure, the last sign-in."""

    failures: int = 0
    last_failed_at: datetime | None = None
    last_succeeded_at: datetime | None = None


def gates(free_per_account: int, free_per_client: int) -> tuple[Gate, Gate, Gate]:
    """The three gates in the order client, account from client, account."""
    return (
        Gate("client", free_per_client, CLIENT_DELAY_CAP),
        Gate("account-client", free_per_account, CLIENT_DELAY_CAP),
        Gate("account", free_per_account * ACCOUNT_FREE_FACTOR, ACCOUNT_DELAY_CAP),
    )


def delay(failures: int, gate: Gate) -> int:
    """Seconds a try must wait after the last failure: none for the first ``free`` failures,
    then 5, 10, 20, … up to ``cap``."""
    over = failures - gate.free
    if over < 0:
        return 0
    return min(FIRST_DELAY * 2 ** min(over, 30), gate.cap)


def wait_seconds(
    counters: tuple[Counter, Counter, Counter],
    rules: tuple[Gate, Gate, Gate],
    now: datetime,
) -> int:
    """Seconds before a try is allowed (0: now), given the counters of client, account from
    client and account. The account-wide delay is waived for a client the account signed in
    from (a recent success is recorded under *account from client*)."""
    known_address = counters[1].last_succeeded_at is not None
    longest = 0
    for counter, gate in zip(counters, rules, strict=True):
        seconds = delay(counter.failures, gate)
        if not seconds or counter.last_failed_at is None:
            continue
        if gate.scope == "account" and known_address:
            continue
        opens = counter.last_failed_at + timedelta(seconds=seconds)
        longest = max(longest, _ceil_seconds(opens - now))
    return longest


def _ceil_seconds(span: timedelta) -> int:
    seconds = span.total_seconds()
    return 0 if seconds <= 0 else int(seconds) + (seconds % 1 > 0)


def normalise_email(email: str) -> str:
    """One spelling per mailbox as sign-in sees it: trimmed, NFKC, case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def client_network(client: str) -> str:
    """The unit a client address is counted by: an IPv4 address, or an IPv6 /64."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def keys(secret: bytes, email: str, client: str) -> tuple[bytes, bytes, bytes]:
    """The keyed hashes of client, account from client and account."""
    account, network = normalise_email(email), client_network(client)

    def keyed(*parts: str) -> bytes:
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(secret, message, hashlib.sha256).digest()

    return (
        keyed("client", network),
        keyed("account-client", account, network),
        keyed("account", account),
    )

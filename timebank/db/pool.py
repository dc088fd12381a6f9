"""A connection pool that serves its waiters in the order they came.

SQLAlchemy's asyncio pool keeps its idle connections in an ``asyncio.Queue``. A connection
given back wakes the longest waiter, but a request arriving before that waiter runs takes the
connection first, and the waiter goes back to the end of the line, so under load some
requests were passed over again and again. Here a connection given back goes straight to the
first waiter, and nobody takes an idle connection while others are waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import queue as sa_queue
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")


class FairQueue(sa_queue.QueueCommon[T]):
    """The queue behind ``FairPool``: idle connections, and the checkouts waiting for one,
    first come first served."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._idle: deque[T] = deque()
        self._waiters: deque[asyncio.Future[T]] = deque()

    def empty(self) -> bool:
        return not self._idle

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._idle)

    def qsize(self) -> int:
        return len(self._idle)

    def _hand_to_waiter(self, item: T) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that timed out or was cancelled is skipped
                waiter.set_result(item)
                return True
        return False

    def _keep(self, item: T, *, even_if_full: bool = False) -> None:
        if self._hand_to_waiter(item):
            return
        if self.full() and not even_if_full:
            raise sa_queue.Full()
        self._idle.append(item)

    def put_nowait(self, item: T) -> None:
        self._keep(item)

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        # The pool gives connections back without blocking: the queue holds at most pool_size.
        self.put_nowait(item)

    def _someone_waiting(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()  # timed out or cancelled, about to leave the line
        return bool(self._waiters)

    def get_nowait(self) -> T:
        if not self._idle or self._someone_waiting():
            raise sa_queue.Empty()
        return self._idle.pop() if self.use_lifo else self._idle.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        try:
            return self.get_nowait()
        except sa_queue.Empty:
            if not block:
                raise
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._waiters.append(waiter)
        # A timer rather than asyncio.wait_for, which costs more than the wait itself here.
        timer = loop.call_later(timeout, _give_up, waiter) if timeout is not None else None
        try:
            return await_(waiter)
        except TimeoutError as exc:
            raise sa_queue.Empty() from exc
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection just as the request was cancelled: pass it on, to the
                # next in line or back among the idle ones even if they are full meanwhile
                # (the pool closes the surplus one when the next connection comes back).
                self._keep(waiter.result(), even_if_full=True)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.cancel()
            # Usually already out of the line (handed a connection, or skipped as done). Looked
            # for first: a failed ``remove`` would build the future's repr for its message.
            if waiter in self._waiters:
                self._waiters.remove(waiter)


def _give_up(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no pooled connection came free in time"))


class FairPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool (sizes, overflow, timeout, events unchanged) with
    ``FairQueue``: checkouts that have to wait get their connections in the order they
    asked."""

    _queue_class: Any = FairQueue

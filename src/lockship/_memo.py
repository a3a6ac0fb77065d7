"""Single-flight memoization: one computation per key, shared by all threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Remember ``compute(key)``; concurrent callers for one key wait for the first.

    Failures are remembered too, so a broken page is reported once, not retried
    by every thread that needs it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[K, Future[V]] = {}

    def get(self, key: K, compute: Callable[[K], V]) -> V:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._futures[key] = future
        if owner:
            try:
                future.set_result(compute(key))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter below
                future.set_exception(exc)
        return future.result()

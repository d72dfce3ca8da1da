"""A byte rate limit for pre-warm fetches: a token bucket (pure) and the pacer that sleeps by it.

Every pre-warm fetch of a process shares one :class:`Pacer`, and a node runs
pre-warming in one process at a time (the job's lock), so the rate is the
node's.  Bytes are paced after they are read: a fetch reads a chunk, then
waits as long as the bucket says, so the origin sees at most the burst plus
the rate over any stretch of time, plus the one chunk in hand.

The bucket holds up to ``burst`` bytes and refills at ``rate`` bytes per
second; spending more than it holds leaves a debt, repaid by waiting
``debt / rate`` seconds.  Concurrent fetches each take their share of the
debt, so together they keep to the rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: The bucket holds this many seconds' worth of bytes ...
BURST_SECONDS = 0.25
#: ... and never less than this (one read's worth, so a tiny rate still makes progress).
MIN_BURST = 64 << 10


@dataclass(frozen=True)
class Bucket:
    """Bytes that may go without waiting (negative: owed), as of ``stamp``."""

    rate: float
    burst: float
    tokens: float
    stamp: float


def full_bucket(rate: float, now: float) -> Bucket:
    burst = max(rate * BURST_SECONDS, MIN_BURST)
    return Bucket(rate, burst, burst, now)


def spend(bucket: Bucket, nbytes: int, now: float) -> tuple[Bucket, float]:
    """The bucket after ``nbytes`` went at ``now``, and the seconds to wait before going on (pure)."""
    refilled = min(bucket.burst, bucket.tokens + max(0.0, now - bucket.stamp) * bucket.rate)
    left = refilled - nbytes
    return Bucket(bucket.rate, bucket.burst, left, max(now, bucket.stamp)), max(0.0, -left / bucket.rate)


class Pacer:
    """Keeps everyone who calls :meth:`pace` to ``rate`` bytes per second together (0: no limit)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("a rate is not negative")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._bucket = full_bucket(rate, clock()) if rate > 0 else None

    def pace(self, nbytes: int) -> float:
        """Account for ``nbytes`` just read and wait as long as the rate asks; the seconds waited."""
        if self._bucket is None or nbytes <= 0:
            return 0.0
        with self._lock:
            self._bucket, delay = spend(self._bucket, nbytes, self._clock())
        if delay > 0:
            self._sleep(delay)  # outside the lock: the others take their own turns meanwhile
        return delay

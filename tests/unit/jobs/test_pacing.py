"""The pre-warm rate limit: the token bucket exhaustively, the pacer with a settable clock."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagecache.jobs.pacing import MIN_BURST, Pacer, full_bucket, spend

rates = st.floats(min_value=1_000, max_value=1e9)
steps = st.lists(st.tuples(st.floats(min_value=0, max_value=5), st.integers(0, 4 << 20)), max_size=40)


@given(rates, steps)
def test_a_consumer_that_waits_as_told_never_gets_ahead_of_burst_plus_rate(rate, steps):
    """However a fetch reads (pauses, chunk sizes), by the time each chunk is let go, the
    bytes so far are at most the burst plus the rate times the time since the start."""
    now = start = 1000.0
    bucket = full_bucket(rate, now)
    total = 0
    for pause, nbytes in steps:
        now += pause
        bucket, delay = spend(bucket, nbytes, now)
        assert delay >= 0
        now += delay
        total += nbytes
        assert total <= bucket.burst + rate * (now - start) + 1e-6 * max(1.0, total)


@given(rates, st.integers(1, 4 << 20))
def test_within_the_burst_nothing_waits_and_past_it_the_debt_is_repaid_at_the_rate(rate, nbytes):
    bucket = full_bucket(rate, 0.0)
    assert bucket.burst == max(rate * 0.25, MIN_BURST)
    _, delay = spend(bucket, nbytes, 0.0)
    assert delay == pytest.approx(max(0.0, (nbytes - bucket.burst) / rate))


@given(rates, st.floats(min_value=0, max_value=100))
def test_an_idle_bucket_refills_only_up_to_its_burst(rate, idle):
    bucket = full_bucket(rate, 0.0)
    emptied = dataclasses.replace(bucket, tokens=0.0)
    later, delay = spend(emptied, 0, idle)
    assert delay == 0 and later.tokens == pytest.approx(min(bucket.burst, rate * idle))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def test_the_pacer_spreads_bytes_over_time_at_its_rate() -> None:
    time = FakeTime()
    pacer = Pacer(1 << 20, clock=time.clock, sleep=time.sleep)
    for _ in range(8):  # 8 MiB in 1 MiB chunks, read instantly
        pacer.pace(1 << 20)
    # All but the burst had to wait: 8 MiB - a quarter second's worth, at 1 MiB/s.
    assert time.now == pytest.approx(8 - 0.25)


def test_no_rate_means_no_waiting() -> None:
    time = FakeTime()
    pacer = Pacer(0, clock=time.clock, sleep=time.sleep)
    assert pacer.pace(1 << 30) == 0.0 and time.slept == []
    with pytest.raises(ValueError):
        Pacer(-1)


def test_concurrent_fetches_share_the_one_rate() -> None:
    time = FakeTime()
    pacer = Pacer(1 << 20, clock=time.clock, sleep=time.sleep)
    waited: list[float] = []

    def fetch() -> None:
        waited.append(sum(pacer.pace(256 << 10) for _ in range(4)))

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 4 MiB in all, a quarter second of burst: the waits add up to what the rate asks of them together.
    assert sum(time.slept) >= 4 - 0.25 - 1e-9

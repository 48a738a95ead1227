"""The watcher's pacing, as pure functions: backoff, the moving --now clock, the stop flag."""

from __future__ import annotations

import datetime as dt
import signal

import pytest

from mailflow.desk.watch import (
    BACKOFF,
    IDLE_RENEW,
    StopFlag,
    WatchSettings,
    backoff_delay,
    running_clock,
    sleep_until_stopped,
)


def test_idle_is_renewed_before_the_29_minutes_of_rfc_2177():
    assert IDLE_RENEW < 29 * 60 and WatchSettings().idle_renew == IDLE_RENEW
    assert WatchSettings().poll_every == 60


@pytest.mark.parametrize(("failures", "pause"), [(1, 1.0), (2, 2.0), (3, 5.0), (8, 300.0),
                                                 (50, 300.0)])
def test_reconnection_pauses_grow_and_are_capped(failures, pause):
    assert backoff_delay(failures) == pause
    assert list(BACKOFF) == sorted(BACKOFF)


def test_under_now_the_clock_starts_there_and_moves_on():
    start = dt.datetime(2027, 1, 5, 14, 30, tzinfo=dt.UTC)
    clock = running_clock(start)
    first, second = clock(), clock()
    assert start <= first <= second < start + dt.timedelta(minutes=1)
    assert running_clock(None)().tzinfo is not None


def test_the_signal_handler_only_sets_a_flag_and_the_sleep_honours_it():
    stop = StopFlag()
    stop(signal.SIGTERM, None)
    assert stop.stopped and stop.signal == signal.SIGTERM
    sleep_until_stopped(3600, stop)  # returns at once: the flag is set

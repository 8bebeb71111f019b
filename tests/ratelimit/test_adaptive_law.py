"""The adaptive law (AdaptiveRate) and AdaptiveBuckets, with an injected clock.

Nothing sleeps: time is a number passed to each event (``now``) or a
FakeClock. Each test pins one rule of the law in notes/adaptive.md.
"""

from __future__ import annotations

import json

import pytest

from scraper_project.ratelimit import INF, AdaptiveBuckets, AdaptiveConfig, AdaptiveRate
from scraper_project.ratelimit.testing import FakeClock

CONFIG = AdaptiveConfig()


def clean_for(law: AdaptiveRate, start: float, seconds: float, bound: bool = True) -> float:
    """Clean answers at the law's own pace for ``seconds``; return the end."""
    now = start
    while now < start + seconds:
        law.clean(now, 1, 1 if bound else 0)
        now += 1 / law.rate if law.rate != INF else 0.01
    return now


def test_unlimited_until_the_first_throttle_then_start() -> None:
    law = AdaptiveRate(CONFIG)
    assert law.rate == INF
    clean_for(law, 0.0, 2.0)
    assert law.rate == INF  # clean answers never limit an unlimited key
    assert law.throttle(2.0, law.epoch, INF)
    assert law.rate == CONFIG.start
    assert law.ceiling == 0  # no limit known: slow start


def test_one_cut_per_epoch_stale_answers_ignored() -> None:
    law = AdaptiveRate(CONFIG, 10.0)
    epoch = law.epoch
    assert law.throttle(0.0, epoch, 10.0)
    rate = law.rate
    assert rate == pytest.approx(CONFIG.beta * 10)
    # Requests sent before the cut come back refused too: no second cut.
    assert not law.throttle(0.01, epoch, 10.0)
    assert not law.throttle(0.02, epoch, 10.0)
    assert law.rate == rate
    assert law.throttles == 1


def test_slow_start_doubles_per_double_time_of_bound_clean_time() -> None:
    law = AdaptiveRate(CONFIG)
    law.throttle(0.0, 0, INF)
    end = clean_for(law, 0.0, 2 * CONFIG.double_time)
    # Each clean answer counts one interval at the rate it was sent at.
    assert law.tau == pytest.approx(2 * CONFIG.double_time, rel=0.25)
    assert law.rate == pytest.approx(CONFIG.start * 2 ** (law.tau / CONFIG.double_time))
    # Answers to requests that did not wait for a token: the rate was not
    # the bottleneck, so no growth.
    rate = law.rate
    clean_for(law, end, 5.0, bound=False)
    assert law.rate == rate


def test_leaving_slow_start_takes_what_the_server_accepted() -> None:
    law = AdaptiveRate(CONFIG)
    law.throttle(-10.0, 0, INF)  # slow start from -10 s
    for i in range(25):  # the server accepted 25 in the last second...
        law.clean(0.5 + i / 50, 1, 0)
    assert law.throttle(1.0, law.epoch, 40.0)  # ...and refused one sent at 40/s
    assert law.ceiling == pytest.approx(25)
    assert law.rate == pytest.approx(CONFIG.beta * 25)


def test_accepted_never_below_half_the_send_rate() -> None:
    law = AdaptiveRate(CONFIG, 100.0)
    law.ceiling = 0.0
    for i in range(30):  # 30 accepted in the last window, sent at 100/s
        law.clean(1.0 + i / 30, 1, 0)
    law.since = 0.0
    assert law.throttle(2.0, law.epoch, 100.0)
    assert law.ceiling == 50.0


def limited_at_20() -> AdaptiveRate:
    """A key that left slow start refused at 20/s (too few answers to count)."""
    law = AdaptiveRate(CONFIG)
    law.throttle(-1.0, 0, INF)
    law.throttle(0.0, law.epoch, 20.0)
    assert law.ceiling == 20
    return law


def test_approach_halves_the_distance_then_holds_below_the_ceiling() -> None:
    law = limited_at_20()
    target = 20 * (1 - CONFIG.margin)
    start = law.rate
    assert start == pytest.approx(CONFIG.beta * 20)
    end = clean_for(law, 0.0, CONFIG.half_life)
    assert law.rate == pytest.approx(target - (target - start) / 2, rel=0.03)
    end = clean_for(law, end, CONFIG.hold - CONFIG.half_life - 1)
    assert law.rate == pytest.approx(target, rel=0.001)
    # After `hold` clean seconds it creeps above, to find a raised limit.
    clean_for(law, end, 6.0)
    assert law.rate > 20


def test_throttle_at_the_target_confirms_with_a_small_step() -> None:
    law = limited_at_20()
    end = clean_for(law, 0.0, 5.0)
    sent = law.rate
    assert law.throttle(end, law.epoch, sent)
    # The estimate: the send rate, or the average accepted since the cut
    # if lower (here: the approach from 16/s pulls it a little lower).
    assert 0.9 * sent <= law.ceiling <= sent
    assert law.rate == pytest.approx(law.ceiling * (1 - 2 * CONFIG.margin))


def test_one_throttle_below_the_target_is_noise_two_move_the_ceiling() -> None:
    law = limited_at_20()
    end = clean_for(law, 0.0, 8.0)
    ceiling = law.ceiling
    low = 0.8 * ceiling
    assert law.throttle(end, law.epoch, low)  # a stall bunched requests
    assert law.ceiling == ceiling
    assert law.rate == pytest.approx(min(low, law.base / (1 - CONFIG.margin)) * 0.97, rel=0.05)
    end = clean_for(law, end, 1.0)
    assert law.throttle(end, law.epoch, low)  # again, soon: the limit went down
    assert law.ceiling == pytest.approx(ceiling * (1 - CONFIG.near))


def test_a_stated_quota_is_taken_at_once_and_never_crept_past() -> None:
    law = AdaptiveRate(CONFIG)
    assert law.hint(0.0, 10.0)
    assert law.rate == pytest.approx(10 * (1 - CONFIG.margin))
    assert not law.hint(0.1, 10.0)  # the same quota again: nothing changes
    epoch = law.epoch
    clean_for(law, 0.1, CONFIG.hold + 20)
    assert law.rate == pytest.approx(10 * (1 - CONFIG.margin))
    assert law.epoch == epoch
    assert law.hint(50.0, 4.0)  # a new quota: the requests sent before are stale
    assert law.epoch == epoch + 1
    assert law.rate == pytest.approx(4 * (1 - CONFIG.margin))


def test_bounds_and_the_configured_rate_as_ceiling() -> None:
    law = AdaptiveRate(AdaptiveConfig(min_rate=2.0), 8.0)
    assert law.rate == 8.0
    for i in range(100):
        law.throttle(float(i), law.epoch, law.rate)
    assert law.rate == 2.0  # never below min_rate
    clean_for(law, 100.0, 600.0)
    assert law.rate == 8.0  # never above its configured rate
    bounded = AdaptiveRate(AdaptiveConfig(max_rate=3.0))
    assert bounded.rate == 3.0


def limited_at(rate: float) -> AdaptiveRate:
    law = AdaptiveRate(CONFIG)
    law.throttle(-2.0, 0, INF)
    law.throttle(-1.0, law.epoch, rate)
    assert law.ceiling == rate
    return law


@pytest.mark.parametrize(("paused", "ceiling"), [(True, 100.0), (False, 50.0)])
def test_accepted_is_measured_only_after_a_pause(paused: bool, ceiling: float) -> None:
    law = limited_at(100.0)
    for i in range(60):
        law.clean(i / 60, 1, 0)
    if paused:
        law.pause(1.0, 2.0)  # a Retry-After from 1 s to 2 s
    for i in range(30):
        law.clean(2.0 + i / 100, 1, 0)
    # Refused at 100/s 0.4 s after the pause: too soon to measure anything
    # (the send rate stands); without the pause 90 answers in 2.4 s say the
    # server took much less (never below half the send rate).
    assert law.throttle(2.4, law.epoch, 100.0)
    assert law.ceiling == ceiling


def test_a_bunched_request_below_the_ceiling_teaches_nothing() -> None:
    law = limited_at(20.0)
    epoch = law.epoch
    assert not law.throttle(0.0, epoch, 16.0, on_pace=False)
    assert law.epoch == epoch
    assert law.throttle(0.0, epoch, 16.0, on_pace=True)
    slow_start = AdaptiveRate(CONFIG)
    slow_start.throttle(0.0, 0, INF)
    assert slow_start.throttle(1.0, slow_start.epoch, 8.0, on_pace=False)


def test_state_round_trip() -> None:
    law = AdaptiveRate(CONFIG, 30.0, 5.0)
    law.throttle(5.0, 0, 30.0)
    clean_for(law, 5.0, 3.0)
    law.pause(8.0, 9.0)
    copy = AdaptiveRate(CONFIG, 30.0)
    copy.load_state(json.loads(json.dumps(law.to_state())))
    assert copy.to_state() == law.to_state()
    assert copy.rate == law.rate


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 1.0}, "beta"),
        ({"margin": 1.0}, "margin"),
        ({"min_rate": 5.0, "max_rate": 2.0}, "exceeds"),
        ({"half_life": 0.0}, "half_life"),
        ({"start": 0.0}, "rate must be > 0"),
    ],
)
def test_bad_config(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveConfig(**kwargs)


# -- AdaptiveBuckets -------------------------------------------------------


def test_buckets_follow_the_law(clock: FakeClock) -> None:
    buckets = AdaptiveBuckets(INF, 1, clock=clock)
    r, epoch, rate = buckets.reserve("a.test")
    assert (r.ok, r.delay, rate) == (True, 0.0, INF)
    learnt = buckets.throttle("a.test", epoch, rate)
    assert learnt is not None
    assert learnt.rate == CONFIG.start
    assert buckets.throttle("a.test", epoch, rate) is None  # stale
    # The bucket now paces at the start rate: one token every 0.25 s.
    first, epoch, rate = buckets.reserve("a.test")
    second, _, _ = buckets.reserve("a.test")
    assert second.time_to_act - first.time_to_act == pytest.approx(1 / CONFIG.start)
    # Beyond the horizon nothing is taken.
    far, _, _ = buckets.reserve("a.test", max_wait=0.1)
    assert not far.ok
    buckets.clean("a.test", bound=True)
    learnt_now = buckets.learnt("a.test")
    assert learnt_now is not None
    assert learnt_now.rate > CONFIG.start


def test_buckets_pause_and_hint(clock: FakeClock) -> None:
    buckets = AdaptiveBuckets(INF, 1, clock=clock)
    buckets.block_for("a.test", 2.0)
    assert buckets.is_blocked("a.test")
    r, _, _ = buckets.reserve("a.test")
    assert r.delay == pytest.approx(2.0)
    learnt = buckets.hint("a.test", 10.0)
    assert learnt is not None
    assert learnt.hinted
    assert buckets.hint("a.test", 10.0) is None


def test_buckets_bounded_preferring_keys_that_learnt_nothing(clock: FakeClock) -> None:
    buckets = AdaptiveBuckets(INF, 1, clock=clock, max_size=3)
    _, epoch, rate = buckets.reserve("limited")
    buckets.throttle("limited", epoch, rate)
    for key in ("b", "c", "d", "e"):
        buckets.reserve(key)
    assert len(buckets) == 3
    assert "limited" in set(buckets)  # its learnt rate is kept

"""BucketRegistry: per-key buckets, overrides and bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from scraper_project.ratelimit import INF, BucketRegistry, RateLimitTimeout
from scraper_project.ratelimit.testing import FakeClock

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def test_keys_are_independent(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 2, clock=clock)
    assert registry.allow("a")
    assert registry.allow("a")
    assert not registry.allow("a")
    assert registry.allow("b")  # b has its own, full bucket
    assert registry.allow("b")
    assert not registry.allow("b")
    clock.advance(1)
    assert registry.allow("a")
    assert registry.allow("b")
    assert len(registry) == 2
    assert "a" in registry
    assert sorted(registry) == ["a", "b"]


def test_overrides(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 1, clock=clock, overrides={"fast.example": (INF, 1)})
    assert registry.config_for("fast.example") == (INF, 1)
    assert registry.config_for("other") == (1, 1)
    assert all(registry.allow("fast.example") for _ in range(100))
    assert registry.allow("slow.example")
    assert not registry.allow("slow.example")
    registry.set_override("slow.example", 10, 3)  # applies to the live bucket
    assert registry.get("slow.example").rate == 10
    assert registry.get("slow.example").burst == 3
    clock.advance(0.1)
    assert registry.allow("slow.example")
    with pytest.raises(ValueError, match="rate"):
        registry.set_override("x", 0, 1)
    with pytest.raises(ValueError, match="burst"):
        BucketRegistry(1, 1, overrides={"x": (1, 0)})


def test_override_survives_eviction(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 1, clock=clock, idle_ttl=0)
    registry.set_override("k", 5, 2)
    registry.allow("k")
    clock.advance(100)
    assert registry.evict_idle() == 1
    assert "k" not in registry
    assert registry.get("k").rate == 5
    assert registry.get("k").burst == 2


def test_size_stays_bounded_with_100k_keys(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 5, clock=clock, max_size=1000)
    for i in range(100_000):
        assert registry.allow(f"key{i}")
        assert len(registry) <= 1000
        if i % 1000 == 0:
            clock.advance(0.01)
    assert len(registry) == 1000
    assert registry.max_size == 1000


def test_idle_full_buckets_are_swept_on_insert(clock: FakeClock) -> None:
    registry = BucketRegistry(10, 1, clock=clock, idle_ttl=60, max_size=10**6)
    for i in range(1000):
        registry.allow(f"old{i}")
    clock.advance(61)  # old buckets are full again and idle past the TTL
    for i in range(1000):
        registry.allow(f"new{i}")
    # Each insertion sweeps up to two idle entries: all the old ones are gone.
    assert all(f"old{i}" not in registry for i in range(1000))
    assert len(registry) == 1000


def test_idle_ttl_is_respected(clock: FakeClock) -> None:
    registry = BucketRegistry(10, 1, clock=clock, idle_ttl=60)
    registry.allow("a")
    clock.advance(59)
    assert registry.evict_idle() == 0  # full, but used 59 s ago
    clock.advance(2)
    assert registry.evict_idle() == 1


def test_buckets_that_are_not_full_are_never_swept(clock: FakeClock) -> None:
    registry = BucketRegistry(0.001, 1, clock=clock, idle_ttl=1)
    registry.allow("slow")  # refills in 1000 s
    registry.block_until("paused", 500.0)
    clock.advance(100)
    assert registry.evict_idle() == 0
    assert not registry.allow("slow")  # eviction would have handed a new token
    assert not registry.allow("paused")
    clock.advance(2000)
    assert registry.evict_idle() == 2


def test_make_room_prefers_a_full_bucket(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 1, clock=clock, max_size=3, idle_ttl=1e9)
    registry.allow("empty1")  # least recently used, but empty
    registry.get("full")  # created, never used: full
    registry.allow("empty2")
    registry.allow("new")  # over max_size: one must go
    assert len(registry) == 3
    assert "full" not in registry  # the harmless choice
    assert not registry.allow("empty1")  # still remembered as empty


def test_make_room_falls_back_to_lru(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 1, clock=clock, max_size=2, idle_ttl=1e9)
    registry.allow("a")
    registry.allow("b")
    registry.allow("a")  # refused, but a is now the most recently used
    registry.allow("c")
    assert sorted(registry) == ["a", "c"]


def test_evicting_a_full_idle_bucket_changes_nothing(clock: FakeClock) -> None:
    kept = BucketRegistry(10, 3, clock=clock, idle_ttl=1e9)
    evicting = BucketRegistry(10, 3, clock=clock, idle_ttl=0)
    pattern = [0, 0, 0, 0, 0.05, 0.3, 0.3, 0.31, 2.0, 2.0, 2.0, 2.0, 5.0]
    for at in pattern:
        clock.set(at)
        evicting.evict_idle()
        assert kept.allow("k") is evicting.allow("k"), at


def test_reserve_and_wait_and_block(run: Run, clock: FakeClock) -> None:
    registry = BucketRegistry(10, 1, clock=clock, sleep=clock.sleep)
    assert registry.reserve("k").delay == 0
    assert registry.reserve("k").delay == pytest.approx(0.1)
    assert not registry.reserve("k", max_wait=0.1).ok
    run(registry.wait("k"))
    assert clock.now() == pytest.approx(0.2)
    with pytest.raises(RateLimitTimeout):
        run(registry.wait("k", timeout=0.05))
    registry.block_until("k", 10.0)
    assert registry.get("k").blocked_until == 10.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_size": 0}, {"idle_ttl": -1}, {"rate": 0}, {"burst": 0}],
)
def test_invalid_arguments(kwargs: dict[str, float]) -> None:
    args: dict[str, Any] = {"rate": 1, "burst": 1, **kwargs}
    with pytest.raises(ValueError, match=r"max_size|idle_ttl|rate|burst"):
        BucketRegistry(**args)


def test_repr(clock: FakeClock) -> None:
    registry = BucketRegistry(1, 1, clock=clock, max_size=7)
    registry.get("a")
    assert "size=1/7" in repr(registry)

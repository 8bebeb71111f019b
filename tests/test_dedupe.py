import random

from scraper_project.dedupe import FingerprintSet, fingerprint


def test_add_and_contains() -> None:
    s = FingerprintSet(4)
    assert s.add(5)
    assert not s.add(5)
    assert 5 in s
    assert 6 not in s
    assert len(s) == 1


def test_grows_and_keeps_everything() -> None:
    s = FingerprintSet(4)
    values = [fingerprint(f"http://h/{i}") for i in range(10_000)]
    assert all(s.add(v) for v in values)
    assert len(s) == 10_000
    assert all(v in s for v in values)
    assert s.nbytes() <= 8 * 4 * 10_000  # load factor stays >= 1/4 after growth


def test_matches_builtin_set_with_discards() -> None:
    rng = random.Random(7)
    ref: set[int] = set()
    s = FingerprintSet(8)
    for _ in range(50_000):
        value = rng.randint(1, 3000)
        if rng.random() < 0.6:
            assert s.add(value) == (value not in ref)
            ref.add(value)
        else:
            s.discard(value)
            ref.discard(value)
        assert len(s) == len(ref)
    assert all(v in s for v in ref)
    assert not any(v in s for v in range(1, 3001) if v not in ref)


def test_colliding_home_slots() -> None:
    s = FingerprintSet(16)
    size = 32  # table size for capacity 16 is 16 slots; use multiples to collide
    values = [size * k + 3 for k in range(1, 8)]
    for v in values:
        s.add(v)
    s.discard(values[2])
    assert all(v in s for v in values if v != values[2])
    assert values[2] not in s


def test_fingerprint_never_zero() -> None:
    assert fingerprint("") != 0

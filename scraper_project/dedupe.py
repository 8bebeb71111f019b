"""A compact, exact set of URL fingerprints.

A Python ``set`` of a million URLs costs about 100 MB (76 MB even for a set
of their hashes, since each 64-bit int is a 32-byte object). This set keeps
64-bit fingerprints unboxed in one flat ``array`` with open addressing and
linear probing: 16 MB per million entries at its maximum load of one half.
No well-kept library offers that without numpy, hence this small class.

Fingerprints are Python's own string hash (SipHash, 64 bits on 64-bit
builds), salted per process: the chance of two distinct URLs colliding in a
list of ten million is below 3e-6, and a collision would merge two rows, never
crash. They are not stable across processes; cross-process deduplication
(the Redis mode) uses its own keys.
"""

from __future__ import annotations

from array import array
from typing import Final

__all__ = ["FingerprintSet", "fingerprint"]

_MASK64: Final = (1 << 64) - 1


def fingerprint(key: str) -> int:
    """A non-zero 64-bit fingerprint of ``key`` (0 marks an empty slot)."""
    return (hash(key) & _MASK64) or 1


class FingerprintSet:
    """An exact set of non-zero 64-bit integers in a flat array."""

    __slots__ = ("_limit", "_mask", "_size", "_table")

    def __init__(self, capacity: int = 1 << 12) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._table = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0
        self._limit = size // 2

    def __len__(self) -> int:
        return self._size

    def __contains__(self, fp: int) -> bool:
        table, mask = self._table, self._mask
        i = fp & mask
        while True:
            value = table[i]
            if value == fp:
                return True
            if value == 0:
                return False
            i = (i + 1) & mask

    def add(self, fp: int) -> bool:
        """Add ``fp``; return ``True`` if it was not there yet."""
        table, mask = self._table, self._mask
        i = fp & mask
        while True:
            value = table[i]
            if value == fp:
                return False
            if value == 0:
                table[i] = fp
                self._size += 1
                if self._size > self._limit:
                    self._grow()
                return True
            i = (i + 1) & mask

    def discard(self, fp: int) -> None:
        """Remove ``fp`` if present (backward-shift deletion, no tombstones)."""
        table, mask = self._table, self._mask
        i = fp & mask
        while True:
            value = table[i]
            if value == 0:
                return
            if value == fp:
                break
            i = (i + 1) & mask
        j = i
        while True:
            j = (j + 1) & mask
            value = table[j]
            if value == 0:
                break
            home = value & mask
            # Move ``value`` back into the hole at i unless its home lies
            # cyclically in (i, j].
            if (i < j and (home <= i or home > j)) or (i > j and j < home <= i):
                table[i] = value
                i = j
        table[i] = 0
        self._size -= 1

    def nbytes(self) -> int:
        """Memory held by the table, in bytes."""
        return self._table.itemsize * len(self._table)

    def _grow(self) -> None:
        old = self._table
        size = len(old) * 2
        self._table = table = array("Q", bytes(8 * size))
        self._mask = mask = size - 1
        self._limit = size // 2
        for value in old:
            if value:
                i = value & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = value

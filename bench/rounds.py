"""Interleaved rounds, the one way every bench tool orders its cases: each round runs every case once, the order
rotated by one each round, so that drift in the machine's load (other jobs start, stop) hits every case alike.

Standard library only (`bench.envs.compare_envs` runs without numpy or the package).
"""
from __future__ import annotations

from typing import Iterator, List, Sequence, Tuple, TypeVar

Case = TypeVar("Case")


def rotated(cases: Sequence[Case], round_index: int) -> List[Case]:
    """The order of round `round_index` (0-based): `cases` starting at `round_index` modulo their count."""
    shift = round_index % len(cases)
    return list(cases[shift:]) + list(cases[:shift])


def interleaved(cases: Sequence[Case], rounds: int) -> Iterator[Tuple[int, Case]]:
    """(round index, case) for `rounds` rounds of every case once, in `rotated` order."""
    for round_index in range(rounds):
        for case in rotated(cases, round_index):
            yield round_index, case

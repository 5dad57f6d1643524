"""bench/rounds.py: the interleaved, rotated order every bench tool runs its cases in."""
from collections import Counter

from bench.rounds import interleaved, rotated


def test_each_round_starts_one_case_later():
    cases = ["a", "b", "c"]
    assert [rotated(cases, number) for number in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert rotated(("x", "y"), 1) == ["y", "x"]  # any sequence; a list back


def test_interleaved_runs_every_case_once_per_round_in_rotated_order():
    cases = [("openvino", 1), ("opencv", 1), ("openvino", 2)]
    order = list(interleaved(cases, 5))
    assert [number for number, _ in order] == [number for number in range(5) for _ in cases]
    for number in range(5):
        assert [case for index, case in order if index == number] == rotated(cases, number)
    assert Counter(case for _, case in order) == {case: 5 for case in cases}
    assert list(interleaved(cases, 0)) == []

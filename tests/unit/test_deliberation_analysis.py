"""Statement voting analysis: two opinion groups of 20, consensus and divisive statements found."""

from __future__ import annotations

import random

import pytest

from core.deliberation.analysis import AGREE, DISAGREE, PASS, analyse


def _two_camps(seed: int = 1) -> list[tuple[str, str, int]]:
    """40 people in two camps (A: 20, B: 20) voting on five statements, with noise and gaps.

    s1 "보행자 안전이 먼저다": both camps agree (consensus).
    s2 "차로를 줄여 자전거길을 만들자": A agrees, B disagrees (divisive).
    s3 "주차 요금을 올리자": A disagrees, B agrees (divisive).
    s4 "공사는 밤에 하자": both disagree (consensus against, not agreement).
    s5 "잘 모르겠다" statement: mostly passes.
    """
    rng = random.Random(seed)
    plan = {
        "s1": (AGREE, AGREE),
        "s2": (AGREE, DISAGREE),
        "s3": (DISAGREE, AGREE),
        "s4": (DISAGREE, DISAGREE),
        "s5": (PASS, PASS),
    }
    votes: list[tuple[str, str, int]] = []
    for camp, prefix in ((0, "a"), (1, "b")):
        for i in range(20):
            person = f"{prefix}{i}"
            for statement, leanings in plan.items():
                if rng.random() < 0.1:
                    continue  # not seen
                vote = leanings[camp]
                if rng.random() < 0.1:  # a dissenting or unsure voice now and then
                    vote = rng.choice([AGREE, DISAGREE, PASS])
                votes.append((person, statement, vote))
    return votes


def test_two_groups_found_with_consensus_and_divisive_statements() -> None:
    result = analyse(_two_camps())
    assert result.participants == 40
    assert result.groups == 2
    assert sorted(result.group_sizes) == [20, 20]
    # each camp lands in its own group (noise may carry a voice across: at most one here)
    a_group = max(range(2), key=lambda g: sum(result.membership[f"a{i}"] == g for i in range(20)))
    assert sum(result.membership[f"a{i}"] == a_group for i in range(20)) >= 19
    assert sum(result.membership[f"b{i}"] != a_group for i in range(20)) >= 19
    assert len(result.coordinates) == 40
    assert [s.statement_id for s in result.consensus] == ["s1"]
    assert {s.statement_id for s in result.divisive} == {"s2", "s3"}
    by_id = {s.statement_id: s for s in result.statements}
    assert by_id["s1"].consensus > 0.6
    assert by_id["s4"].is_consensus is False  # shared disagreement is not agreement
    assert by_id["s5"].passed >= 25


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_stable_across_noise(seed: int) -> None:
    result = analyse(_two_camps(seed))
    assert result.groups == 2
    a_group = max(range(2), key=lambda g: sum(result.membership[f"a{i}"] == g for i in range(20)))
    assert sum(result.membership[f"a{i}"] == a_group for i in range(20)) >= 17
    assert sum(result.membership[f"b{i}"] != a_group for i in range(20)) >= 17
    assert {s.statement_id for s in result.divisive} == {"s2", "s3"}
    assert "s1" in {s.statement_id for s in result.consensus}


def test_one_crowd_that_agrees_is_one_group() -> None:
    votes = [(f"p{i}", s, AGREE) for i in range(30) for s in ("s1", "s2", "s3")]
    result = analyse(votes)
    assert result.groups == 1
    assert {s.statement_id for s in result.consensus} == {"s1", "s2", "s3"}
    assert result.divisive == ()


def test_few_people_are_one_group_and_thin_statements_are_not_called() -> None:
    votes = [("p1", "s1", AGREE), ("p2", "s1", AGREE), ("p1", "s2", DISAGREE)]
    result = analyse(votes)
    assert result.groups == 1
    by_id = {s.statement_id: s for s in result.statements}
    assert by_id["s1"].is_consensus is False  # two votes are too few to call
    assert result.consensus == ()


def test_empty_and_bad_votes() -> None:
    assert analyse([]).participants == 0
    with pytest.raises(ValueError):
        analyse([("p", "s", 5)])

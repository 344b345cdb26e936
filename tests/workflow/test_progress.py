"""Progress numbers from counted facts: what each fact adds to the answer."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from polis_api.workflow.door import StatusInfo, derived_from_state, state_for_interaction
from polis_api.workflow.progress import (
    ANSWER,
    CANVASSER,
    DAY,
    DOOR,
    Fact,
    is_contacted_state,
    knock_outcome,
    progress,
)
from polis_api.workflow.states import CONTACT_STATES

STATUS = "53a18d44-54f0-400e-b9cd-dd0bd32ae904"


def outcome_of(unavailable: bool, successful: bool | None) -> str:
    """What ``progress_knock_facts`` stores for a knock's own fields (the migration)."""
    if unavailable:
        return "unavailable"
    return "successful" if successful else "unsuccessful"


@pytest.mark.parametrize(
    ("state", "unavailable", "successful"),
    list(itertools.product([None, *CONTACT_STATES], [False, True], [None, False, True])),
)
def test_a_knock_counts_as_the_state_the_door_rules_give_it(
    state: str | None, unavailable: bool, successful: bool | None
) -> None:
    status = StatusInfo(STATUS, state) if state is not None else None
    door_state = state_for_interaction(
        unavailable=unavailable, unavailable_reason=None, successful=successful, status=status
    )
    flags = derived_from_state(door_state)
    fact = Fact(
        kind=DAY,
        n=1,
        day=date(2026, 11, 1),
        status_id=STATUS if state is not None else None,
        outcome=outcome_of(unavailable, successful),
        contact_state=state,
    )

    assert knock_outcome(fact) == (flags["contacted"], flags["successful"])


@pytest.mark.parametrize("state", CONTACT_STATES)
def test_contacted_states_are_the_door_rules_contacted(state: str) -> None:
    assert is_contacted_state(state) == derived_from_state(state)["contacted"]


def test_a_status_that_no_longer_exists_falls_back_to_the_knocks_own_fields() -> None:
    fact = Fact(kind=CANVASSER, n=2, user_id="u", status_id=STATUS, outcome="successful")

    assert knock_outcome(fact) == (True, True)


def test_nothing_counted_is_an_empty_answer() -> None:
    assert progress([]) == {
        "doors": 0,
        "contacted": 0,
        "contactRate": 0.0,
        "successful": 0,
        "byState": {},
        "byStatus": {},
        "byDay": [],
        "byCanvasser": [],
        "surveys": {},
    }


def test_facts_add_up_and_zero_sums_disappear() -> None:
    facts = [
        Fact(DOOR, 3, state="not-contacted-normal"),
        Fact(DOOR, 1, state="contacted-available-successful", status_id=STATUS),
        Fact(DOOR, 0, state="come-back"),  # a key whose deltas netted to zero
        Fact(DAY, 2, day=date(2026, 11, 2), outcome="unavailable"),
        Fact(DAY, 1, day=date(2026, 11, 1), outcome="successful"),
        Fact(
            DAY,
            1,
            day=date(2026, 11, 1),
            status_id=STATUS,
            contact_state="not-contacted-normal",
        ),
        Fact(CANVASSER, 1, user_id="b", outcome="successful"),
        Fact(CANVASSER, 1, user_id="a", outcome="unsuccessful"),
        Fact(CANVASSER, 2, user_id="c", outcome="unavailable"),
        Fact(ANSWER, 2, question_id="q", option_id="yes"),
        Fact(ANSWER, 0, question_id="gone", option_id="x"),
    ]

    assert progress(facts) == {
        "doors": 4,
        "contacted": 1,
        "contactRate": 0.25,
        "successful": 1,
        "byState": {"contacted-available-successful": 1, "not-contacted-normal": 3},
        "byStatus": {STATUS: 1},
        "byDay": [
            {"date": "2026-11-01", "interactions": 2, "contacted": 1},
            {"date": "2026-11-02", "interactions": 2, "contacted": 2},
        ],
        "byCanvasser": [
            {"userId": "c", "interactions": 2, "contacted": 2, "successful": 0},
            {"userId": "a", "interactions": 1, "contacted": 1, "successful": 0},
            {"userId": "b", "interactions": 1, "contacted": 1, "successful": 1},
        ],
        "surveys": {"q": {"yes": 2}},
    }

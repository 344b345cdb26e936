"""A campaign's progress from its counted facts (docs/progress.md): pure, no database.

The database counts *facts* (migration 0017_progress: ``progress_door_facts`` and
``progress_knock_facts``); this module turns the counted facts into the answer's
numbers. A knock's ``contacted`` and ``successful`` follow the state it puts its door
in (``workflow.door.state_for_interaction``): a status decides by its contactState;
without one the knock is always contacted, and successful when available and
marked successful.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from polis_api.workflow.door import NOT_CONTACTED_PREFIX, SUCCESSFUL

DOOR = "door"
DAY = "day"
CANVASSER = "canvasser"
ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class Fact:
    """One counted key: ``n`` documents (door records or interactions) share it."""

    kind: str
    n: int
    day: date | None = None
    user_id: str | None = None
    state: str | None = None
    status_id: str | None = None
    outcome: str | None = None
    question_id: str | None = None
    option_id: str | None = None
    # The named status' contactState (deleted statuses included), when it has one.
    contact_state: str | None = None


def is_contacted_state(state: str | None) -> bool:
    # ``unknown`` counts as contacted, like every state but the never-contacted ones.
    return state is not None and not state.startswith(NOT_CONTACTED_PREFIX)


def knock_outcome(fact: Fact) -> tuple[bool, bool]:
    """(contacted, successful) of the knocks a day or canvasser fact counts."""
    if fact.status_id is not None and fact.contact_state is not None:
        return is_contacted_state(fact.contact_state), fact.contact_state == SUCCESSFUL
    return True, fact.outcome == "successful"


@dataclass
class _Knocks:
    interactions: int = 0
    contacted: int = 0
    successful: int = 0

    def add(self, fact: Fact) -> None:
        contacted, successful = knock_outcome(fact)
        self.interactions += fact.n
        self.contacted += fact.n if contacted else 0
        self.successful += fact.n if successful else 0


def _door_numbers(facts: list[Fact]) -> dict[str, Any]:
    by_state: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for fact in facts:
        if fact.state is not None:
            by_state[fact.state] += fact.n
        if fact.status_id is not None:
            by_status[fact.status_id] += fact.n
    doors = sum(fact.n for fact in facts)
    contacted = sum(fact.n for fact in facts if is_contacted_state(fact.state))
    return {
        "doors": doors,
        "contacted": contacted,
        "contactRate": contacted / doors if doors else 0.0,
        "successful": sum(fact.n for fact in facts if fact.state == SUCCESSFUL),
        "byState": _nonzero(by_state),
        "byStatus": _nonzero(by_status),
    }


def _by_day(facts: list[Fact]) -> list[dict[str, Any]]:
    days: defaultdict[date, _Knocks] = defaultdict(_Knocks)
    for fact in facts:
        assert fact.day is not None
        days[fact.day].add(fact)
    return [
        {"date": day.isoformat(), "interactions": k.interactions, "contacted": k.contacted}
        for day, k in sorted(days.items())
        if k.interactions
    ]


def _by_canvasser(facts: list[Fact]) -> list[dict[str, Any]]:
    people: defaultdict[str, _Knocks] = defaultdict(_Knocks)
    for fact in facts:
        assert fact.user_id is not None
        people[fact.user_id].add(fact)
    # The busiest first; ties by id so the answer (and its etag) is stable.
    ranked = sorted(people.items(), key=lambda item: (-item[1].interactions, item[0]))
    return [
        {
            "userId": user_id,
            "interactions": k.interactions,
            "contacted": k.contacted,
            "successful": k.successful,
        }
        for user_id, k in ranked
        if k.interactions
    ]


def _surveys(facts: list[Fact]) -> dict[str, dict[str, int]]:
    questions: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for fact in facts:
        assert fact.question_id is not None and fact.option_id is not None
        questions[fact.question_id][fact.option_id] += fact.n
    answered = {question: _nonzero(options) for question, options in questions.items()}
    return {question: options for question, options in sorted(answered.items()) if options}


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: n for key, n in sorted(counts.items()) if n}


def progress(facts: Iterable[Fact]) -> dict[str, Any]:
    """The ``data`` of the progress answer from every fact of the scope counted."""
    kinds: defaultdict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        if fact.n:
            kinds[fact.kind].append(fact)
    return {
        **_door_numbers(kinds[DOOR]),
        "byDay": _by_day(kinds[DAY]),
        "byCanvasser": _by_canvasser(kinds[CANVASSER]),
        "surveys": _surveys(kinds[ANSWER]),
    }

"""Door-state rules: tables of state → flags, status → record, interaction → record, time."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from polis_api.workflow.door import (
    DoorRuleError,
    StateMismatch,
    StatusInfo,
    UnknownValue,
    apply_interaction,
    apply_status,
    derived_from_state,
    forget_interactions,
    initial_state,
    is_newer,
    new_record,
    normalise_reason,
    should_follow,
    state_for_interaction,
)
from polis_api.workflow.states import CONTACT_STATES, LIST_TYPES

CAMPAIGN = "c92162c6-f604-4caf-a964-d668d8bf67c8"
CONTACT_HOUSEHOLD = "b66e4452-5fcd-4b79-bb1c-068ed7353192"
STATUS_ID = "53a18d44-54f0-400e-b9cd-dd0bd32ae904"
DEFAULT_ID = "54aa7cef-877a-44ec-b2c5-442b43f5d758"
INTERACTION_ID = "7da76f74-7951-423a-be41-85a2551d16e7"
T1 = "2018-07-17T18:40:53.526Z"
T2 = "2018-07-18T18:40:53.526Z"


def status(state: str, status_id: str = STATUS_ID) -> StatusInfo:
    return StatusInfo(id=status_id, contact_state=state)


def record(**changes: Any) -> dict[str, Any]:
    data = new_record(CAMPAIGN, CONTACT_HOUSEHOLD)
    data.update(changes)
    return data


def interaction(**changes: Any) -> dict[str, Any]:
    """Seed 001's first interaction, flat, as POST /v2/interactions receives it."""
    data: dict[str, Any] = {
        "campaignId": CAMPAIGN,
        "contactId": "0478dbbf-b6eb-4168-afa9-5ebab6fef4b6",
        "householdId": "c15e3515-aabf-42da-8d1b-31679f738eae",
        "contactHouseholdId": CONTACT_HOUSEHOLD,
        "timestamp": T1,
        "unavailable": True,
        "unavailableReason": "Come Back",
        "successful": True,
        "survey": {"surveyId": "375d437b-3b47-4940-b43d-be8daec4afff", "responses": {}},
    }
    data.update(changes)
    return data


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in keys}


def flags(data: dict[str, Any]) -> tuple[bool, bool, bool]:
    return data["contacted"], data["successful"], data["availability"]["available"]


# state → (contacted, successful, available): every state of SPEC §2
DERIVED: list[tuple[str, tuple[bool, bool, bool]]] = [
    ("appointment", (True, False, False)),
    ("not-contacted-high-priority", (False, False, False)),
    ("not-contacted-do-not-knock", (False, False, False)),
    ("not-contacted-normal", (False, False, False)),
    ("contacted-available-successful", (True, True, True)),
    ("contacted-available-not-successful", (True, False, True)),
    ("contacted-unavailable-not-home", (True, False, False)),
    ("contacted-unavailable-other", (True, False, False)),
    ("come-back", (True, False, False)),
    ("unknown", (True, False, False)),
]


def test_the_table_covers_every_state() -> None:
    assert sorted(state for state, _ in DERIVED) == sorted(CONTACT_STATES)


@pytest.mark.parametrize(("state", "expected"), DERIVED)
def test_derived_from_state(state: str, expected: tuple[bool, bool, bool]) -> None:
    contacted, successful, available = expected
    assert derived_from_state(state) == {
        "contacted": contacted,
        "successful": successful,
        "availability": {"available": available},
    }


@pytest.mark.parametrize("state", ["", "Appointment", "not-contacted-", "contacted", "x"])
def test_derived_from_unknown_state_raises(state: str) -> None:
    with pytest.raises(UnknownValue, match="unknown state"):
        derived_from_state(state)


@pytest.mark.parametrize(
    ("list_type", "expected"),
    [
        (None, "not-contacted-normal"),
        ("normal", "not-contacted-normal"),
        ("high-priority", "not-contacted-high-priority"),
        ("do-not-knock", "not-contacted-do-not-knock"),
    ],
)
def test_initial_state(list_type: str | None, expected: str) -> None:
    assert initial_state(list_type) == expected


@pytest.mark.parametrize("list_type", ["", "Normal", "priority", "do_not_knock"])
def test_initial_state_refuses_unknown_list_types(list_type: str) -> None:
    with pytest.raises(UnknownValue, match="unknown list type"):
        initial_state(list_type)


def test_new_record_matches_the_seed_shape() -> None:
    assert new_record(CAMPAIGN, CONTACT_HOUSEHOLD) == {
        "campaignId": CAMPAIGN,
        "contactHouseholdId": CONTACT_HOUSEHOLD,
        "contacted": False,
        "successful": False,
        "state": "not-contacted-normal",
        "statusId": None,
        "type": "normal",
        "availability": {"available": False, "unavailableReason": None},
        "reservation": {"reserved": False},
        "lastInteraction": None,
    }


@pytest.mark.parametrize("list_type", LIST_TYPES)
def test_new_record_sits_on_its_list(list_type: str) -> None:
    data = new_record(CAMPAIGN, CONTACT_HOUSEHOLD, list_type)
    assert (data["type"], data["state"]) == (list_type, f"not-contacted-{list_type}")


def test_new_records_do_not_share_nested_dicts() -> None:
    first, second = record(), record()
    first["availability"]["available"] = True
    assert second["availability"]["available"] is False


# --- apply_status ------------------------------------------------------------------

FRESH = record()
CONTACTED = apply_interaction(
    record(type="high-priority"), interaction(), None, None, interaction_id=INTERACTION_ID
)


@pytest.mark.parametrize("start", [FRESH, CONTACTED], ids=["fresh", "contacted"])
@pytest.mark.parametrize(("state", "expected"), DERIVED)
def test_apply_status_sets_state_and_flags(
    start: dict[str, Any], state: str, expected: tuple[bool, bool, bool]
) -> None:
    result = apply_status(start, status(state))
    assert result["state"] == state
    assert result["statusId"] == STATUS_ID
    assert flags(result) == expected
    # what the status does not own is kept
    for key in ("campaignId", "contactHouseholdId", "type", "reservation", "lastInteraction"):
        assert result[key] == start[key]


@pytest.mark.parametrize("state", CONTACT_STATES)
def test_apply_status_accepts_the_matching_explicit_state(state: str) -> None:
    assert apply_status(FRESH, status(state), explicit_state=state)["state"] == state


@pytest.mark.parametrize(("status_state", "given"), list(itertools.permutations(CONTACT_STATES, 2)))
def test_apply_status_refuses_a_mismatched_explicit_state(status_state: str, given: str) -> None:
    with pytest.raises(StateMismatch) as caught:
        apply_status(FRESH, status(status_state), explicit_state=given)
    message = str(caught.value)
    assert f"'{status_state}'" in message
    assert f"'{given}'" in message
    assert STATUS_ID in message
    assert isinstance(caught.value, ValueError)


def test_seed_patch_example() -> None:
    """Seed 000, 'Update status': a fresh record patched to a Not Home status."""
    result = apply_status(FRESH, status("contacted-unavailable-not-home"))
    assert {key: result[key] for key in ("state", "statusId", "contacted", "successful")} == {
        "state": "contacted-unavailable-not-home",
        "statusId": STATUS_ID,
        "contacted": True,
        "successful": False,
    }
    assert result["availability"] == {"available": False, "unavailableReason": None}


# (state before, list type, explicit state) → state after clearing the status
CLEARING: list[tuple[str, str, str | None, str]] = [
    # never contacted: back to the list's pin
    ("not-contacted-normal", "normal", None, "not-contacted-normal"),
    ("not-contacted-do-not-knock", "normal", None, "not-contacted-normal"),
    ("not-contacted-normal", "high-priority", None, "not-contacted-high-priority"),
    ("not-contacted-high-priority", "do-not-knock", None, "not-contacted-do-not-knock"),
    # contacted: the visit's state stays
    ("contacted-available-successful", "normal", None, "contacted-available-successful"),
    ("contacted-available-not-successful", "normal", None, "contacted-available-not-successful"),
    ("contacted-unavailable-not-home", "high-priority", None, "contacted-unavailable-not-home"),
    ("contacted-unavailable-other", "normal", None, "contacted-unavailable-other"),
    ("come-back", "normal", None, "come-back"),
    ("appointment", "normal", None, "appointment"),
    ("unknown", "normal", None, "unknown"),
    # an explicit state without a status is taken as given
    ("contacted-available-successful", "normal", "come-back", "come-back"),
    ("not-contacted-normal", "normal", "not-contacted-do-not-knock", "not-contacted-do-not-knock"),
]


@pytest.mark.parametrize(("before", "list_type", "explicit", "after"), CLEARING)
def test_clearing_the_status(before: str, list_type: str, explicit: str | None, after: str) -> None:
    start = apply_status(record(type=list_type), status(before))
    result = apply_status(start, None, explicit_state=explicit)
    assert result["statusId"] is None
    assert result["state"] == after
    assert result == apply_status(start, status(after)) | {"statusId": None}


def test_clearing_a_record_without_type_uses_normal() -> None:
    start = record()
    del start["type"]
    assert apply_status(start, None)["state"] == "not-contacted-normal"


def test_apply_status_refuses_unknown_explicit_state() -> None:
    with pytest.raises(UnknownValue):
        apply_status(FRESH, None, explicit_state="gone-fishing")


def test_apply_status_refuses_a_status_with_an_unknown_state() -> None:
    with pytest.raises(UnknownValue):
        apply_status(FRESH, status("gone-fishing"))


REASONED = apply_interaction(FRESH, interaction(unavailableReason="Not Home"), None, None)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("contacted-unavailable-not-home", "Not Home"),  # same state: reason still true
        ("contacted-unavailable-other", None),  # another state: the reason was about the old one
        ("come-back", None),
        ("contacted-available-successful", None),  # available: no reason
        ("not-contacted-normal", None),
    ],
)
def test_apply_status_keeps_the_reason_only_in_the_same_state(
    state: str, reason: str | None
) -> None:
    assert REASONED["availability"]["unavailableReason"] == "Not Home"
    assert apply_status(REASONED, status(state))["availability"]["unavailableReason"] == reason


def test_apply_status_does_not_mutate_its_input() -> None:
    start = copy.deepcopy(REASONED)
    apply_status(REASONED, status("come-back"))
    apply_status(REASONED, None)
    assert start == REASONED


# --- state_for_interaction ---------------------------------------------------------

# unavailable reason → state (unavailable, no status); reasons match leniently
REASONS: list[tuple[str | None, str]] = [
    ("Not Home", "contacted-unavailable-not-home"),
    ("not home", "contacted-unavailable-not-home"),
    ("NOT HOME", "contacted-unavailable-not-home"),
    ("  Not   Home ", "contacted-unavailable-not-home"),
    ("not-home", "contacted-unavailable-not-home"),
    ("not_home", "contacted-unavailable-not-home"),
    ("NotHome", "contacted-unavailable-not-home"),
    ("Come Back", "come-back"),
    ("come back", "come-back"),
    ("come-back", "come-back"),
    ("COMEBACK", "come-back"),
    ("Appointment", "appointment"),
    ("appointment ", "appointment"),
    ("APPOINTMENT", "appointment"),
    ("Refused", "contacted-unavailable-other"),
    ("Bad Contact Info", "contacted-unavailable-other"),
    ("Not Home Yet", "contacted-unavailable-other"),
    ("Home", "contacted-unavailable-other"),
    ("", "contacted-unavailable-other"),
    ("   ", "contacted-unavailable-other"),
    (None, "contacted-unavailable-other"),
]


@pytest.mark.parametrize("successful", [True, False, None])
@pytest.mark.parametrize(("reason", "expected"), REASONS)
def test_unavailable_reason_picks_the_state(
    reason: str | None, expected: str, successful: bool | None
) -> None:
    state = state_for_interaction(
        unavailable=True, unavailable_reason=reason, successful=successful, status=None
    )
    assert state == expected


@pytest.mark.parametrize("reason", [None, "Not Home", "Come Back", "Appointment", "Refused"])
@pytest.mark.parametrize(
    ("successful", "expected"),
    [
        (True, "contacted-available-successful"),
        (False, "contacted-available-not-successful"),
        (None, "contacted-available-not-successful"),
    ],
)
def test_available_contact_picks_success(
    reason: str | None, successful: bool | None, expected: str
) -> None:
    state = state_for_interaction(
        unavailable=False, unavailable_reason=reason, successful=successful, status=None
    )
    assert state == expected


@pytest.mark.parametrize("state", CONTACT_STATES)
@pytest.mark.parametrize(
    ("unavailable", "reason", "successful"),
    [(True, "Not Home", False), (True, None, True), (False, None, True), (False, "x", False)],
)
def test_a_given_status_decides_the_state(
    state: str, unavailable: bool, reason: str | None, successful: bool
) -> None:
    chosen = state_for_interaction(
        unavailable=unavailable,
        unavailable_reason=reason,
        successful=successful,
        status=status(state),
    )
    assert chosen == state


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("Not Home", "nothome"), (" come-BACK ", "comeback"), ("Appoint_ment", "appointment")],
)
def test_normalise_reason(reason: str, expected: str) -> None:
    assert normalise_reason(reason) == expected


# --- apply_interaction -------------------------------------------------------------

# interaction changes → (state, contacted, successful, available, unavailableReason)
INTERACTIONS: list[tuple[dict[str, Any], tuple[str, bool, bool, bool, str | None]]] = [
    # seed 001's first interaction: unavailable, "Come Back", flagged successful
    ({}, ("come-back", True, False, False, "Come Back")),
    # seed 001's second: available and successful, the stale reason dropped
    ({"unavailable": False}, ("contacted-available-successful", True, True, True, None)),
    (
        {"unavailable": False, "successful": False},
        ("contacted-available-not-successful", True, False, True, None),
    ),
    (
        {"unavailable": False, "successful": None},
        ("contacted-available-not-successful", True, False, True, None),
    ),
    (
        {"unavailable": True, "unavailableReason": "not home", "successful": False},
        ("contacted-unavailable-not-home", True, False, False, "not home"),
    ),
    (
        {"unavailableReason": "Appointment"},
        ("appointment", True, False, False, "Appointment"),
    ),
    (
        {"unavailableReason": "Refused"},
        ("contacted-unavailable-other", True, False, False, "Refused"),
    ),
    (
        {"unavailableReason": None},
        ("contacted-unavailable-other", True, False, False, None),
    ),
]


@pytest.mark.parametrize(("changes", "expected"), INTERACTIONS)
def test_apply_interaction_without_status(
    changes: dict[str, Any], expected: tuple[str, bool, bool, bool, str | None]
) -> None:
    result = apply_interaction(FRESH, interaction(**changes), None, None)
    state, contacted, successful, available, reason = expected
    assert result["state"] == state
    assert flags(result) == (contacted, successful, available)
    assert result["availability"]["unavailableReason"] == reason
    assert result["statusId"] is None


@pytest.mark.parametrize(("changes", "expected"), INTERACTIONS)
def test_apply_interaction_uses_the_default_status(
    changes: dict[str, Any], expected: tuple[str, bool, bool, bool, str | None]
) -> None:
    result = apply_interaction(FRESH, interaction(**changes), None, DEFAULT_ID)
    assert result["statusId"] == DEFAULT_ID
    assert result["state"] == expected[0]


@pytest.mark.parametrize(("state", "expected"), DERIVED)
@pytest.mark.parametrize("unavailable", [True, False])
def test_apply_interaction_with_status(
    state: str, expected: tuple[bool, bool, bool], unavailable: bool
) -> None:
    given = status(state)
    result = apply_interaction(
        FRESH,
        interaction(statusId=STATUS_ID, unavailable=unavailable, unavailableReason="Not Home"),
        given,
        DEFAULT_ID,  # ignored: the interaction named its own status
    )
    assert (result["state"], result["statusId"]) == (state, STATUS_ID)
    # the record keeps SPEC's invariant: the flags follow the state ...
    assert flags(result) == expected
    # ... so it is the record a PATCH of that status would give, bar the reason
    same = apply_status(FRESH, given)
    assert without(result, "lastInteraction", "availability") == without(
        same, "lastInteraction", "availability"
    )
    reason = "Not Home" if unavailable and not expected[2] else None
    assert result["availability"]["unavailableReason"] == reason


def test_apply_interaction_records_what_it_follows() -> None:
    result = apply_interaction(FRESH, interaction(), None, None, interaction_id=INTERACTION_ID)
    assert result["lastInteraction"] == {"interactionId": INTERACTION_ID, "timestamp": T1}
    later = apply_interaction(result, interaction(timestamp=T2, unavailable=False), None, None)
    assert later["lastInteraction"] == {"interactionId": None, "timestamp": T2}


def test_apply_interaction_keeps_what_it_does_not_own() -> None:
    start = record(type="do-not-knock", reservation={"reserved": True, "walklistId": "w-1"})
    result = apply_interaction(start, interaction(), None, None)
    for key in ("campaignId", "contactHouseholdId", "type", "reservation"):
        assert result[key] == start[key]


def test_apply_interaction_replaces_an_earlier_status() -> None:
    start = apply_status(FRESH, status("contacted-available-successful"))
    result = apply_interaction(start, interaction(), None, None)
    assert (result["state"], result["statusId"]) == ("come-back", None)


@pytest.mark.parametrize(
    ("named", "given"),
    [(STATUS_ID, None), (STATUS_ID, status("come-back", DEFAULT_ID))],
)
def test_apply_interaction_refuses_an_unresolved_status(
    named: str, given: StatusInfo | None
) -> None:
    with pytest.raises(ValueError, match="names statusId"):
        apply_interaction(FRESH, interaction(statusId=named), given, None)


def test_apply_interaction_does_not_mutate_its_inputs() -> None:
    start, visit = copy.deepcopy(CONTACTED), interaction(unavailable=False)
    before = copy.deepcopy((start, visit))
    result = apply_interaction(start, visit, None, DEFAULT_ID)
    assert (start, visit) == before
    result["availability"]["available"] = False
    assert start == before[0]


# --- the late-interaction rule -----------------------------------------------------

# (candidate, last) → does the door follow the candidate?
NEWER: list[tuple[str, str | None, bool]] = [
    (T1, None, True),  # nothing followed yet
    (T2, T1, True),  # later
    (T1, T2, False),  # earlier, arriving late: stored, the door stays
    (T1, T1, True),  # exact tie: the later arrival wins
    ("2018-07-17T18:40:53.527Z", T1, True),  # a millisecond later
    ("2018-07-17T18:40:53.525Z", T1, False),  # a millisecond earlier
    ("2018-07-17T14:40:53.526-04:00", T1, True),  # the same instant in New York: a tie
    ("2018-07-17T14:40:53.525-04:00", T1, False),  # a millisecond earlier, in New York
    ("2018-07-17T20:40:53.000+02:00", T1, False),  # later on the clock, earlier in fact
    ("2018-07-17T18:40:53.526+00:00", T1, True),  # +00:00 is Z
    ("2018-07-17T18:40:53.526", T1, True),  # no offset: taken as UTC
    ("2018-07-18T00:00:00.000Z", "2018-07-17T23:59:59.999Z", True),  # across midnight
    ("2018-12-31T23:59:59.999Z", "2019-01-01T00:00:00.000Z", False),  # across a year
    # as strings these would sort the other way
    ("2018-07-17T19:00:00.000+01:00", "2018-07-17T18:30:00.000Z", False),
]


@pytest.mark.parametrize(("candidate", "last", "expected"), NEWER)
def test_is_newer(candidate: str, last: str | None, expected: bool) -> None:
    assert is_newer(candidate, last) is expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2018-13-01T00:00:00Z", "18:40"])
def test_is_newer_refuses_what_is_not_a_timestamp(bad: str) -> None:
    with pytest.raises(DoorRuleError, match="not an ISO 8601"):
        is_newer(bad, T1)


@pytest.mark.parametrize(
    ("current", "candidate", "expected"),
    [
        (None, T1, True),  # no record yet
        (FRESH, T1, True),  # a record that follows no interaction
        (apply_interaction(FRESH, interaction(timestamp=T2), None, None), T1, False),
        (apply_interaction(FRESH, interaction(timestamp=T1), None, None), T2, True),
        (apply_interaction(FRESH, interaction(timestamp=T1), None, None), T1, True),
    ],
)
def test_should_follow(current: dict[str, Any] | None, candidate: str, expected: bool) -> None:
    assert should_follow(current, candidate) is expected


def test_out_of_order_arrivals_end_on_the_latest_visit() -> None:
    """Three visits arriving in every order leave the door where the latest one put it."""
    visits = [
        interaction(timestamp="2018-07-17T10:00:00.000Z", unavailableReason="Not Home"),
        interaction(timestamp="2018-07-17T12:00:00.000Z", unavailable=False),
        interaction(timestamp="2018-07-17T11:00:00.000Z", unavailableReason="Come Back"),
    ]
    for order in itertools.permutations(visits):
        door: dict[str, Any] | None = None
        for visit in order:
            if should_follow(door, visit["timestamp"]):
                door = apply_interaction(door or FRESH, visit, None, None)
        assert door is not None
        assert door["state"] == "contacted-available-successful"
        assert door["lastInteraction"]["timestamp"] == "2018-07-17T12:00:00.000Z"


@pytest.mark.parametrize("list_type", ["normal", "high-priority", "do-not-knock"])
def test_forgetting_every_interaction_leaves_a_never_contacted_door(list_type: str) -> None:
    fresh = new_record(CAMPAIGN, CONTACT_HOUSEHOLD, list_type)
    held = {**fresh, "reservation": {"reserved": True, "walklistId": STATUS_ID}}
    visited = apply_interaction(
        held,
        {
            "timestamp": "2026-11-28T14:00:00.000Z",
            "unavailable": True,
            "unavailableReason": "Not Home",
        },
        None,
        DEFAULT_ID,
        interaction_id=STATUS_ID,
    )

    forgotten = forget_interactions(visited)

    assert forgotten == held, "only what interactions set is undone"
    assert visited["state"] == "contacted-unavailable-not-home", "the input is not mutated"

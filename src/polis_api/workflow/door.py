"""Door-state rules of a contact-household-campaign record (docs/api.md, Door records).

Pure functions over the record's ``data`` dict: no database, no HTTP. The caller looks
up statuses and the latest interaction, then asks these functions what the record
becomes. Every function returns a new dict; its inputs are never mutated.

One invariant holds for every record these functions produce: ``contacted``,
``successful`` and ``availability.available`` are what ``derived_from_state`` says for
the record's ``state``, so a filter on any of them means the same thing as a filter on
the state, and recording an interaction with a status gives the very record a PATCH of
that status would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from polis_api.workflow.states import CONTACT_STATES, LIST_TYPES

Record = dict[str, Any]

DEFAULT_LIST_TYPE = "normal"
NOT_CONTACTED_PREFIX = "not-contacted-"
AVAILABLE_PREFIX = "contacted-available-"
SUCCESSFUL = "contacted-available-successful"
NOT_SUCCESSFUL = "contacted-available-not-successful"
UNAVAILABLE_OTHER = "contacted-unavailable-other"

# The unavailable reasons that pick a state of their own, keyed by
# their normalised form (see ``normalise_reason``). Any other reason is "other".
REASON_STATES: dict[str, str] = {
    "nothome": "contacted-unavailable-not-home",
    "comeback": "come-back",
    "appointment": "appointment",
}


class DoorRuleError(ValueError):
    """A door rule refused its input; the caller answers 400 with the message."""


class StateMismatch(DoorRuleError):
    """A status was given together with a state that is not the status' contactState."""

    def __init__(self, status_id: str, contact_state: str, explicit_state: str) -> None:
        super().__init__(
            f"statusId {status_id} has contactState '{contact_state}', "
            f"but the record's state was given as '{explicit_state}'"
        )
        self.status_id = status_id
        self.contact_state = contact_state
        self.explicit_state = explicit_state


class UnknownValue(DoorRuleError):
    """A state or list type outside the API's vocabulary."""


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The two facts about a status that the door rules need; the caller reads them."""

    id: str
    contact_state: str


def check_state(state: str) -> str:
    if state not in CONTACT_STATES:
        raise UnknownValue(f"unknown state '{state}'; expected one of {', '.join(CONTACT_STATES)}")
    return state


def check_list_type(list_type: str | None) -> str:
    # In Polis a record without a list type sits on a normal list.
    chosen = DEFAULT_LIST_TYPE if list_type is None else list_type
    if chosen not in LIST_TYPES:
        raise UnknownValue(f"unknown list type '{chosen}'; expected one of {', '.join(LIST_TYPES)}")
    return chosen


def initial_state(list_type: str | None) -> str:
    """The state of a door nobody has contacted: ``not-contacted-<type>``."""
    return NOT_CONTACTED_PREFIX + check_list_type(list_type)


def derived_from_state(state: str) -> dict[str, Any]:
    """The flags derived from a state (``unknown`` counts as contacted)."""
    check_state(state)
    return {
        "contacted": not state.startswith(NOT_CONTACTED_PREFIX),
        "successful": state == SUCCESSFUL,
        "availability": {"available": state.startswith(AVAILABLE_PREFIX)},
    }


def new_record(campaign_id: str, contact_household_id: str, list_type: str | None = None) -> Record:
    """A fresh record: never contacted, no status, not reserved, following no interaction."""
    chosen_type = check_list_type(list_type)
    return {
        "campaignId": campaign_id,
        "contactHouseholdId": contact_household_id,
        "contacted": False,
        "successful": False,
        "state": initial_state(chosen_type),
        # Always present so Polis' `replace /statusId` works on a new record.
        "statusId": None,
        "type": chosen_type,
        "availability": {"available": False, "unavailableReason": None},
        "reservation": {"reserved": False},
        # Server-owned: which interaction the door follows, so the late-interaction rule
        # is one row read rather than a scan of the interactions table.
        "lastInteraction": None,
    }


def with_state(record: Mapping[str, Any], state: str, unavailable_reason: str | None) -> Record:
    """A copy of ``record`` in ``state`` with the derived flags; the reason only if unavailable."""
    derived = derived_from_state(state)
    # A shallow copy is enough: the rules only ever replace top-level keys (nested
    # values are new dicts), so the caller's record is never mutated.
    updated = dict(record)
    available: bool = derived["availability"]["available"]
    updated["state"] = state
    updated["contacted"] = derived["contacted"]
    updated["successful"] = derived["successful"]
    updated["availability"] = {
        "available": available,
        # A reason explains an absence; an available contact has none.
        "unavailableReason": None if available else unavailable_reason,
    }
    return updated


def _unclassified_state(record: Mapping[str, Any]) -> str:
    # Without a status, a contacted door keeps the state that its visit gave it (the
    # status was only a label on it), while a never-contacted door goes back to its
    # list's pin (in Polis a door without a status shows its list's).
    state = str(record.get("state") or "")
    if state in CONTACT_STATES and not state.startswith(NOT_CONTACTED_PREFIX):
        return state
    return initial_state(record.get("type"))


def apply_status(
    record: Mapping[str, Any], status: StatusInfo | None, *, explicit_state: str | None = None
) -> Record:
    """Set (or, with ``status=None``, clear) the record's status; the flags follow the state.

    With a status, ``state`` becomes its contactState; an ``explicit_state`` that differs
    raises StateMismatch. Without one, ``statusId`` becomes null and the state is
    ``explicit_state`` when given, else ``_unclassified_state``. The unavailable reason
    survives only while the door stays in the same unavailable state, because it
    described that state.
    """
    if status is not None:
        state = check_state(status.contact_state)
        if explicit_state is not None and explicit_state != state:
            raise StateMismatch(status.id, state, explicit_state)
    elif explicit_state is not None:
        state = check_state(explicit_state)
    else:
        state = _unclassified_state(record)
    old_reason = (record.get("availability") or {}).get("unavailableReason")
    reason = old_reason if state == record.get("state") else None
    updated = with_state(record, state, reason)
    updated["statusId"] = None if status is None else status.id
    return updated


def normalise_reason(reason: str) -> str:
    # Reasons are typed or picked on phones: "Not Home", "not home", "NOT_HOME" and
    # "not-home" all mean the same, so only letters and digits are compared.
    return re.sub(r"[^0-9a-z]", "", reason.casefold())


def state_for_interaction(
    *,
    unavailable: bool,
    unavailable_reason: str | None,
    successful: bool | None,
    status: StatusInfo | None,
) -> str:
    """The state an interaction puts the door in (docs/api.md, Interactions)."""
    if status is not None:
        return check_state(status.contact_state)
    if unavailable:
        if unavailable_reason is None:
            return UNAVAILABLE_OTHER
        return REASON_STATES.get(normalise_reason(unavailable_reason), UNAVAILABLE_OTHER)
    return SUCCESSFUL if successful else NOT_SUCCESSFUL


def _check_status_matches(interaction: Mapping[str, Any], status: StatusInfo | None) -> None:
    # The caller resolves the interaction's statusId; a different one is a caller bug
    # that would silently put the door in the wrong state.
    named = interaction.get("statusId")
    given = None if status is None else status.id
    if named is not None and named != given:
        raise ValueError(f"interaction names statusId {named} but status {given} was given")


def apply_interaction(
    record: Mapping[str, Any],
    interaction: Mapping[str, Any],
    status: StatusInfo | None,
    default_status_id: str | None,
    *,
    interaction_id: str | None = None,
) -> Record:
    """The record after the door follows ``interaction`` (its flat ``data``).

    The caller has already decided (``should_follow``) that this interaction is the
    latest by timestamp. ``default_status_id`` is the tenant's default status for
    ``state_for_interaction(...)``; it is used only when the interaction names no status.
    """
    _check_status_matches(interaction, status)
    unavailable = bool(interaction.get("unavailable"))
    reason = interaction.get("unavailableReason") if unavailable else None
    state = state_for_interaction(
        unavailable=unavailable,
        unavailable_reason=reason,
        successful=interaction.get("successful"),
        status=status,
    )
    updated = with_state(record, state, reason)
    updated["statusId"] = status.id if status is not None else default_status_id
    updated["lastInteraction"] = {
        "interactionId": interaction_id,
        "timestamp": interaction["timestamp"],
    }
    return updated


def forget_interactions(record: Mapping[str, Any]) -> Record:
    """The record as if no interaction had been recorded at the door (a review rollback
    took them all back): its list's never-contacted state, no status, following
    nothing. Its list type and reservation stay, as they came from elsewhere."""
    updated = with_state(record, initial_state(record.get("type")), None)
    updated["statusId"] = None
    updated["lastInteraction"] = None
    return updated


def parse_timestamp(text: str) -> datetime:
    # Offsets other than Z are compared on the same instant line; a timestamp without
    # an offset is taken as UTC, the zone every timestamp of the API is in.
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise DoorRuleError(f"timestamp {text!r} is not an ISO 8601 date-time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_newer(candidate_timestamp: str, last_timestamp: str | None) -> bool:
    """Whether the door should follow an interaction at ``candidate_timestamp``.

    Phones sync late and out of order, so the door follows the latest ``timestamp``,
    not the latest arrival. On an exact tie the later arrival wins: it is the newest
    word about the same moment, and it makes a re-sent interaction idempotent.
    """
    if last_timestamp is None:
        return True
    return parse_timestamp(candidate_timestamp) >= parse_timestamp(last_timestamp)


def last_interaction_timestamp(record: Mapping[str, Any]) -> str | None:
    last = record.get("lastInteraction")
    if not isinstance(last, Mapping):
        return None
    timestamp = last.get("timestamp")
    return timestamp if isinstance(timestamp, str) else None


def should_follow(record: Mapping[str, Any] | None, candidate_timestamp: str) -> bool:
    """``is_newer`` against what the record (None: not created yet) follows now."""
    if record is None:
        return True
    return is_newer(candidate_timestamp, last_interaction_timestamp(record))

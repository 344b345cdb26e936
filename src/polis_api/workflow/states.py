"""Door states of a contact-household inside a campaign (docs/api.md, Door records)."""

from __future__ import annotations

from typing import Literal, get_args

ContactState = Literal[
    "appointment",
    "not-contacted-high-priority",
    "not-contacted-do-not-knock",
    "not-contacted-normal",
    "contacted-available-successful",
    "contacted-available-not-successful",
    "contacted-unavailable-not-home",
    "contacted-unavailable-other",
    "come-back",
    "unknown",
]
CONTACT_STATES: tuple[str, ...] = get_args(ContactState)

ListType = Literal["high-priority", "normal", "do-not-knock"]
LIST_TYPES: tuple[str, ...] = get_args(ListType)

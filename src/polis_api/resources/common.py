"""Field types several resources share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

from polis_api.config import get_settings


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


NonEmptyText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_not_blank)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
HexColour = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]


def at_most(setting: str) -> Callable[[list[Any]], list[Any]]:
    """A validator bounding a list by a setting (``POLIS_<SETTING>``), read from the
    environment like every worker's settings."""

    def check(items: list[Any]) -> list[Any]:
        limit: int = getattr(get_settings(), setting)
        if len(items) > limit:
            raise ValueError(
                f"holds {len(items)} items; at most {limit} are allowed (POLIS_{setting.upper()})"
            )
        return items

    return check

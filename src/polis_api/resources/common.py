"""Field types several resources share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


NonEmptyText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_not_blank)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
HexColour = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]

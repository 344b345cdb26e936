"""Natural keys: what makes two documents of a tenant "the same one" (create dedupe).

A key is a list of SQL expressions over ``data`` that a partial unique index in the
migration covers, as ``(customer_id, *expressions) WHERE NOT is_deleted [AND
condition]``. The database is what enforces it: an insert that repeats a live key
does nothing (``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key
to commit), and the create then answers with the document that holds the key.

Finding that document evaluates the key's expressions on the candidate's data in
SQL too, so Python never has to reproduce PostgreSQL's ``lower`` or ``btrim``
exactly. The Python ``normalise`` only says whether a key applies to some data (all
its values present and its condition met) and gives a stable order to write a batch
in, so two concurrent batches take their key locks in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

KeyValue = tuple[str, ...]


@dataclass(frozen=True)
class NaturalKey:
    label: str  # for messages: "externalId", "full name and primaryHouseholdId"
    expressions: tuple[str, ...]  # SQL over ``data``, exactly as in the unique index
    # The key's values for some data, or None when the key does not apply to it.
    normalise: Callable[[dict[str, Any]], KeyValue | None]
    condition: str = ""  # an extra SQL predicate over ``data`` of the partial index

    @classmethod
    def of_fields(cls, *fields: str) -> NaturalKey:
        """Top-level data fields compared as text: the common case."""
        return cls(
            label=", ".join(fields),
            expressions=tuple(f"(data ->> '{field}')" for field in fields),
            normalise=_fields_normaliser(fields),
        )


@cache
def _fields_normaliser(fields: tuple[str, ...]) -> Callable[[dict[str, Any]], KeyValue | None]:
    def normalise(data: dict[str, Any]) -> KeyValue | None:
        values = [data.get(field) for field in fields]
        if any(value is None for value in values):
            return None
        return tuple(str(value) for value in values)

    return normalise

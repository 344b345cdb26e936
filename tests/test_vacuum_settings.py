"""The tables a canvass rewrites are vacuumed early (migration 0018, docs/reliability.md)."""

from __future__ import annotations

import asyncpg

REWRITTEN = ("contact_household_campaigns", "campaigns", "progress_tallies", "rate_limits")


async def test_rewritten_tables_are_vacuumed_at_two_percent_dead(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])",
            list(REWRITTEN),
        )
    finally:
        await conn.close()

    options = {row["relname"]: set(row["reloptions"] or ()) for row in rows}
    assert options.keys() == set(REWRITTEN)
    for table, set_ in options.items():
        # By default a fifth of the table: 86,000 dead door records at 432,000 doors.
        assert "autovacuum_vacuum_scale_factor=0.02" in set_, table
        assert "autovacuum_vacuum_threshold=1000" in set_, table

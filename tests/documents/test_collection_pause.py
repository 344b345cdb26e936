"""Bulk calls pause the cycle collector (documents/bulk_results.py), within a bound."""

from __future__ import annotations

import gc
import weakref

import pytest

from polis_api.documents import bulk_results
from polis_api.documents.bulk_results import cycle_collection_paused


class Node:
    partner: Node


def cyclic_garbage(freed: list[str], name: str) -> None:
    node = Node()
    node.partner = node  # only the cycle collector frees it
    weakref.finalize(node, freed.append, name)


def test_the_collector_is_back_on_when_the_last_call_ends() -> None:
    assert gc.isenabled()
    with cycle_collection_paused():
        with cycle_collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer call still runs
    assert gc.isenabled()


def test_overlapping_calls_do_not_keep_cyclic_garbage_past_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    freed: list[str] = []
    with cycle_collection_paused():
        cyclic_garbage(freed, "before the bound")
        with cycle_collection_paused():
            pass
        assert freed == []  # within the bound: nothing collected while paused

        monkeypatch.setattr(bulk_results, "MAX_PAUSE_SECONDS", 0.0)
        with cycle_collection_paused():
            pass
        # Past the bound, a call's end collects although another call still pauses.
        assert freed == ["before the bound"]
        assert not gc.isenabled()
    assert gc.isenabled()

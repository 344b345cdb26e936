"""listing.RecentLists: which parsed list requests are kept, and how many."""

from __future__ import annotations

from polis_api.documents.listing import ListRequest, RecentLists
from polis_api.documents.repository import ListQuery


def _listing(*, feed: bool = False) -> ListRequest:
    query = ListQuery(where="customer_id = $1", order_by="id ASC", params=[], limit=1, skip=0)
    return ListRequest(query=query, count=False, stream=False, feed=feed)


def _parses(kept: RecentLists, query: bytes, listing: ListRequest) -> int:
    """How many times ``kept`` parsed ``query`` over two asks."""
    calls = []

    def parse() -> ListRequest:
        calls.append(query)
        return listing

    for _ in range(2):
        assert kept.parsed(query, "context", parse) == listing
    return len(calls)


def test_a_list_is_parsed_once_and_a_feed_every_time() -> None:
    kept = RecentLists()
    assert _parses(kept, b"limit=5", _listing()) == 1
    assert _parses(kept, b"since=", _listing(feed=True)) == 2


def test_a_long_query_string_is_parsed_every_time() -> None:
    kept = RecentLists(max_query_bytes=16)
    assert _parses(kept, b"filter=" + b"x" * 16, _listing()) == 2


def test_the_oldest_list_is_dropped_beyond_the_size() -> None:
    kept = RecentLists(size=2)
    for query in (b"a", b"b", b"c"):
        assert _parses(kept, query, _listing()) == 1
    assert _parses(kept, b"a", _listing()) == 1  # dropped for c, so parsed again
    assert _parses(kept, b"c", _listing()) == 0

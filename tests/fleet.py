"""A fleet of phones on a bad network against a running polis-api: the engine.

Sixty canvassers knock 300 doors offline with skewed clocks and sync through every
fault a mobile network has: requests dropped before they leave, answers lost after
the server acted, bodies cut off mid-send, duplicates, and batches through the outbox
call. Five readers follow the change feed the whole time while an organiser deletes
some knocks. At the end:

- every acknowledged knock is stored, and no knock is stored twice;
- every door is in the state of its latest-timestamp knock, whatever order they came in;
- every reader's replica equals the server's live set after a final ``since`` pull,
  and every reader received a tombstone for each deleted knock.

``tests/test_fleet.py`` runs it small inside ``make test`` (about 15 s); ``bench/fleet.py``
runs it bigger and reports the figures. Bounded either way: a fixed seed, a fixed number
of knocks, rounds and feed pages.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from polis_api.auth import mint_token
from polis_api.config import Settings
from tests.canvassing import SEED_INTERACTION

LIMIT_ALL = 9007199254740991
# What a knock's reason makes of the door (interactions without a statusId).
REASON_STATE = {"Not Home": "contacted-unavailable-not-home", "Come Back": "come-back"}


@dataclass(frozen=True)
class FleetSize:
    phones: int = 60
    doors: int = 300  # a multiple of phones: each phone walks doors // phones of its own
    knocks_per_phone: int = 8
    readers: int = 5
    rounds: int = 12
    deleted_knocks: int = 12


@dataclass(frozen=True)
class Door:
    contact_id: str
    household_id: str
    pair_id: str


@dataclass
class Knock:
    id: str
    body: dict[str, Any]
    acked: bool = False

    @property
    def door(self) -> str:
        return str(self.body["contactHouseholdId"])

    @property
    def timestamp(self) -> str:
        return str(self.body["timestamp"])

    def envelope(self) -> dict[str, Any]:
        """The knock as the app sends it: its own id, so a resend is a replay."""
        return {"id": self.id, "data": self.body}

    def expected_state(self) -> str:
        if self.body["unavailable"]:
            return REASON_STATE[self.body["unavailableReason"]]
        if self.body["successful"]:
            return "contacted-available-successful"
        return "contacted-available-not-successful"


@dataclass
class Faults:
    dropped: int = 0
    lost_answers: int = 0
    cut_off: int = 0
    duplicates: int = 0
    batches: int = 0
    replays: int = 0


@dataclass
class Replica:
    """A reader's copy of one list, kept only from the change feed."""

    path: str
    token: str = ""
    pages: int = 0
    live: dict[str, str] = field(default_factory=dict)  # id -> etag
    tombstones: set[str] = field(default_factory=set)

    def apply(self, documents: list[dict[str, Any]]) -> None:
        for document in documents:
            if document["meta"]["isDeleted"]:
                self.live.pop(document["id"], None)
                self.tombstones.add(document["id"])
            else:
                self.live[document["id"]] = document["meta"]["etag"]


# Answers that tell a client to try again: a phone keeps the knock in its outbox.
RETRY_LATER = (409, 429, 503)


async def _send(http: httpx.AsyncClient, method: str, url: str, **options: Any) -> httpx.Response:
    """One request as a patient client makes it: a 'try again' answer is retried after
    its Retry-After (a busy shared database may briefly run out of connections)."""
    for attempt in range(8):
        answer = await http.request(method, url, **options)
        if answer.status_code not in (429, 503):
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")) * (1 + attempt) / 4)
    return answer


def _token(settings: Settings, customer_id: uuid.UUID, role: str) -> dict[str, str]:
    token = mint_token(
        settings, roles=[role], customer_id=customer_id, sub=uuid.uuid4(), ttl_seconds=1800
    )
    return {"Authorization": f"Bearer {token}"}


async def _setup_doors(
    http: httpx.AsyncClient, admin: dict[str, str], count: int
) -> tuple[str, list[Door]]:
    campaign = await _send(
        http,
        "POST",
        "/v1/campaigns",
        json={"data": {"name": "Fleet", "status": "started", "organizationId": str(uuid.uuid4())}},
        headers=admin,
    )
    assert campaign.status_code == 201, campaign.text
    households = await _send(
        http,
        "POST",
        "/v2/households/bulk",
        json={
            "data": [
                {"data": {"address": {"number": str(n), "streetName": "Fleet Street"}}}
                for n in range(count)
            ]
        },
        headers=admin,
    )
    assert households.status_code == 200, households.text
    household_ids = [doc["id"] for doc in households.json()["data"]]
    contact_ids = [str(uuid.uuid4()) for _ in range(count)]
    pairs = await _send(
        http,
        "POST",
        "/v2/contacts/households/bulk",
        json={
            "data": [
                {"data": {"contactId": contact, "householdId": household}}
                for contact, household in zip(contact_ids, household_ids, strict=True)
            ]
        },
        headers=admin,
    )
    assert pairs.status_code == 200, pairs.text
    doors = [
        Door(doc["data"]["contactId"], doc["data"]["householdId"], doc["id"])
        for doc in pairs.json()["data"]
    ]
    return str(campaign.json()["id"]), doors


def _knocks(
    rng: random.Random, size: FleetSize, campaign_id: str, doors: list[Door]
) -> list[list[Knock]]:
    """Each phone's outbox. Neighbouring phones share doors, so knocks of one door come
    from two clocks. Every timestamp is a multiple of ``slots`` milliseconds (clock
    skew and time of day alike) plus the knock's own number below ``slots``, so no two
    knocks share a timestamp and 'latest' is never a tie."""
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    slots = size.phones * size.knocks_per_phone
    per_phone = size.doors // size.phones
    outboxes: list[list[Knock]] = []
    for phone in range(size.phones):
        mine = doors[phone * per_phone : (phone + 1) * per_phone]
        following = (phone + 1) % size.phones
        neighbours = doors[following * per_phone : (following + 1) * per_phone]
        skew = rng.randint(-900, 900)  # a phone's wrong clock, in units of ``slots`` ms
        outbox = []
        for number in range(size.knocks_per_phone):
            door = rng.choice(mine + neighbours)
            units = skew + rng.randint(0, 36_000)
            at = base + timedelta(
                milliseconds=units * slots + phone * size.knocks_per_phone + number
            )
            outbox.append(Knock(str(uuid.uuid4()), _knock_body(rng, campaign_id, door, at)))
        outboxes.append(outbox)
    return outboxes


def _knock_body(rng: random.Random, campaign_id: str, door: Door, at: datetime) -> dict[str, Any]:
    body = dict(SEED_INTERACTION)
    body.update(
        campaignId=campaign_id,
        contactId=door.contact_id,
        householdId=door.household_id,
        contactHouseholdId=door.pair_id,
        timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
    )
    outcome = rng.choice(["Not Home", "Come Back", "yes", "no"])
    if outcome in REASON_STATE:
        body.update(unavailable=True, unavailableReason=outcome, successful=False)
    else:
        body.update(unavailable=False, successful=outcome == "yes")
        body.pop("unavailableReason")
    return body


class Phone:
    """One canvasser's app: an outbox it keeps sending until every knock is acknowledged."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        headers: dict[str, str],
        outbox: list[Knock],
        rng: random.Random,
        faults: Faults,
        base_url: str,
    ) -> None:
        self.http = http
        self.headers = headers
        self.outbox = outbox
        self.rng = rng
        self.faults = faults
        self.base_url = base_url
        self.batches = rng.random() < 0.5

    def pending(self) -> list[Knock]:
        return [knock for knock in self.outbox if not knock.acked]

    async def sync(self) -> None:
        pending = self.pending()
        if not pending:
            return
        if self.batches:
            await self._send_batch(pending)
        else:
            for knock in pending:
                await self._send_one(knock)

    async def _send_one(self, knock: Knock) -> None:
        fault = self.rng.choices(
            ["ok", "drop", "lost", "cut", "dup"], weights=[50, 10, 15, 15, 10]
        )[0]
        headers = {**self.headers, "Idempotency-Key": f"knock-{knock.id}"}
        body = knock.envelope()
        if fault == "drop":
            self.faults.dropped += 1
            return
        if fault == "cut":
            self.faults.cut_off += 1
            await _cut_off_post(self.base_url, "/v2/interactions", headers, body)
            return
        if fault == "dup":
            self.faults.duplicates += 1
            answers = await asyncio.gather(
                self.http.post("/v2/interactions", json=body, headers=headers),
                self.http.post("/v2/interactions", json=body, headers=headers),
            )
        else:
            answers = [await self.http.post("/v2/interactions", json=body, headers=headers)]
        if fault == "lost":
            self.faults.lost_answers += 1
            return  # the server acted; the phone never heard
        for answer in answers:
            # "Try again" answers (the same key still running, a busy server) keep the
            # knock in the outbox for the next round.
            assert answer.status_code in (200, 201, *RETRY_LATER), answer.text
            if answer.status_code in (200, 201):
                assert answer.json()["id"] == knock.id
                knock.acked = True
                if answer.headers.get("idempotent-replayed") or answer.status_code == 200:
                    self.faults.replays += 1

    async def _send_batch(self, pending: list[Knock]) -> None:
        self.faults.batches += 1
        body = {"data": [knock.envelope() for knock in pending]}
        fault = self.rng.choices(["ok", "drop", "lost", "cut"], weights=[55, 15, 15, 15])[0]
        if fault == "drop":
            self.faults.dropped += 1
            return
        if fault == "cut":
            self.faults.cut_off += 1
            await _cut_off_post(self.base_url, "/v2/interactions/bulk", self.headers, body)
            return
        answer = await self.http.post("/v2/interactions/bulk", json=body, headers=self.headers)
        if fault == "lost":
            self.faults.lost_answers += 1
            return
        if answer.status_code in RETRY_LATER:
            return  # the whole outbox goes again next round
        assert answer.status_code == 207, answer.text
        results = answer.json()["data"]
        assert [result["index"] for result in results] == list(range(len(pending)))
        for knock, result in zip(pending, results, strict=True):
            assert result["status"] in (200, 201), result
            assert result["document"]["id"] == knock.id
            knock.acked = True


async def _cut_off_post(
    base_url: str, path: str, headers: dict[str, str], body: dict[str, Any]
) -> None:
    """A POST whose connection drops halfway through its body, as on a train."""
    url = urlsplit(base_url)
    payload = orjson.dumps(body)
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(payload)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload[: len(payload) // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _pull(http: httpx.AsyncClient, headers: dict[str, str], replica: Replica) -> bool:
    """One page of the change feed; True when the reader is caught up for now."""
    answer = await _send(
        http, "GET", replica.path, params={"since": replica.token, "limit": 50}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    page = answer.json()
    replica.pages += 1
    replica.apply(page["data"])
    replica.token = page["meta"]["next"]
    return not page["meta"]["more"]


async def _follow(
    http: httpx.AsyncClient, headers: dict[str, str], replicas: list[Replica], done: asyncio.Event
) -> None:
    while not done.is_set():
        for replica in replicas:
            await _pull(http, headers, replica)
        await asyncio.sleep(0.05)


async def _catch_up(http: httpx.AsyncClient, headers: dict[str, str], replica: Replica) -> None:
    for _ in range(1000):
        if await _pull(http, headers, replica):
            return
    raise AssertionError(f"{replica.path}: the feed never said 'no more'")


async def _live_set(http: httpx.AsyncClient, headers: dict[str, str], path: str) -> dict[str, str]:
    answer = await _send(http, "GET", path, params={"limit": LIMIT_ALL}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {doc["id"]: doc["meta"]["etag"] for doc in answer.json()["data"]}


async def _delete_some(
    http: httpx.AsyncClient,
    admin: dict[str, str],
    rng: random.Random,
    knocks: list[Knock],
    wanted: int,
) -> set[str]:
    """The organiser deletes a few acknowledged knocks while the fleet syncs."""
    deleted: set[str] = set()
    for _ in range(wanted + 200):
        if len(deleted) == wanted:
            break
        candidates = [k for k in knocks if k.acked and k.id not in deleted]
        if not candidates:
            await asyncio.sleep(0.1)
            continue
        knock = rng.choice(candidates)
        current = await _send(http, "GET", f"/v2/interactions/{knock.id}", headers=admin)
        assert current.status_code == 200, current.text
        gone = await _send(
            http,
            "DELETE",
            f"/v2/interactions/{knock.id}",
            headers={**admin, "If-Match": current.headers["etag"]},
        )
        assert gone.status_code == 204, gone.text
        deleted.add(knock.id)
    return deleted


@dataclass(frozen=True)
class FleetReport:
    knocks: int
    deleted: int
    faults: Faults
    feed_pages: int
    seconds: float


async def run_fleet(
    base_url: str, settings: Settings, size: FleetSize, seed: int = 20261129
) -> FleetReport:
    """Run the fleet against ``base_url`` (a fresh tenant of its own) and assert every
    invariant in the module docstring; ``settings`` signs the tokens."""
    rng = random.Random(seed)
    customer_id = uuid.uuid4()
    admin = _token(settings, customer_id, "admin")
    started = time.monotonic()
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        campaign_id, doors = await _setup_doors(http, admin, size.doors)
        outboxes = _knocks(rng, size, campaign_id, doors)
        knocks = [knock for outbox in outboxes for knock in outbox]
        faults = Faults()
        phones = [
            Phone(http, _token(settings, customer_id, "canvasser"), outbox, rng, faults, base_url)
            for outbox in outboxes
        ]
        feeds = [
            f"/v2/interactions?filter[/data/campaignId]={campaign_id}",
            f"/v1/campaigns/{campaign_id}/contact-households",
        ]
        readers = [[Replica(path) for path in feeds] for _ in range(size.readers)]
        done = asyncio.Event()
        # Each reader is a phone of its own user, with its own rate-limit budget.
        viewers = [_token(settings, customer_id, "viewer") for _ in readers]
        following = [
            asyncio.create_task(_follow(http, viewer, replicas, done))
            for viewer, replicas in zip(viewers, readers, strict=True)
        ]
        deleting = asyncio.create_task(_delete_some(http, admin, rng, knocks, size.deleted_knocks))
        try:
            for _ in range(size.rounds):
                await asyncio.gather(*(phone.sync() for phone in phones))
                if not any(phone.pending() for phone in phones):
                    break
            deleted = await deleting
        finally:
            done.set()
            await asyncio.gather(*following, return_exceptions=True)
        for task in following:
            task.result()  # a reader's failure is the fleet's failure

        assert not [k.id for k in knocks if not k.acked], "knocks never acknowledged"
        await _assert_every_knock_stored_once(http, admin, campaign_id, knocks, deleted)
        await _assert_doors_follow_latest_knock(http, admin, campaign_id, knocks)
        for viewer, replicas in zip(viewers, readers, strict=True):
            for replica in replicas:
                await _catch_up(http, viewer, replica)
                assert replica.live == await _live_set(http, admin, replica.path)
            assert deleted <= replicas[0].tombstones, "a reader missed a deletion"
            assert not deleted & replicas[0].live.keys()
    pages = sum(replica.pages for replicas in readers for replica in replicas)
    return FleetReport(len(knocks), len(deleted), faults, pages, time.monotonic() - started)


async def _assert_every_knock_stored_once(
    http: httpx.AsyncClient,
    admin: dict[str, str],
    campaign_id: str,
    knocks: list[Knock],
    deleted: set[str],
) -> None:
    path = f"/v2/interactions?filter[/data/campaignId]={campaign_id}"
    stored = await _live_set(http, admin, path)
    assert set(stored) == {k.id for k in knocks} - deleted
    assert len(stored) == len(knocks) - len(deleted)


async def _assert_doors_follow_latest_knock(
    http: httpx.AsyncClient, admin: dict[str, str], campaign_id: str, knocks: list[Knock]
) -> None:
    latest: dict[str, Knock] = {}
    for knock in knocks:
        if knock.door not in latest or knock.timestamp > latest[knock.door].timestamp:
            latest[knock.door] = knock
    answer = await _send(
        http,
        "GET",
        f"/v1/campaigns/{campaign_id}/contact-households",
        params={"limit": LIMIT_ALL},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    states = {
        doc["data"]["contactHouseholdId"]: doc["data"]["state"] for doc in answer.json()["data"]
    }
    assert states.keys() == latest.keys()
    wrong = {
        door: (states[door], knock.expected_state())
        for door, knock in latest.items()
        if states[door] != knock.expected_state()
    }
    assert not wrong, wrong

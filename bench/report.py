"""The results as one Markdown report: measurements, ratios, targets, plans."""

from __future__ import annotations

from typing import Any

from routes import ISSUE_11_12, ROUTES

Rows = list[dict[str, Any]]
COMPARED = ("get-interaction", "list-50", "list-50-deep")
FILTER_PLANS = (
    "filter /data/contactId",
    "filter /data/contactHouseholdId",
    "filter /data/householdId",
    "filter /meta/modified gt",
    "filter /meta/created gt",
    "list-50, first page",
    "campaign's door records (map), first 100",
    "delta sync of a campaign's doors",
)


def _find(rows: Rows, app: str, workers: int, endpoint: str, conns: int) -> dict[str, Any] | None:
    for row in rows:
        if (row["app"], row["workers"], row["endpoint"], row["connections"]) == (
            app,
            workers,
            endpoint,
            conns,
        ):
            return row
    return None


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str = "rps") -> float | None:
    if a is None or b is None or not b[key]:
        return None
    return a[key] / b[key]


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def measurement_table(rows: Rows) -> str:
    lines = [
        "| app | workers | endpoint | conns | req/s | p50 ms | p99 ms | app CPU µs/req "
        "| db CPU µs/req | errors | other load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        lines.append(
            f"| {r['app']} | {r['workers']} | {r['endpoint']} | {r['connections']} "
            f"| {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['server_cpu_us']:,.0f} | {r['db_cpu_us']:,.0f} | {errors} "
            f"| {r['other_cpu_pct']:.0f} % |"
        )
    return "\n".join(lines)


def ratio_table(rows: Rows) -> str:
    lines = [
        "| endpoint | workers | conns | polis-api req/s | floor | naive "
        "| polis/floor | polis/naive |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in COMPARED:
        for workers in (1, 2):
            for conns in (16, 64):
                polis = _find(rows, "polis-api", workers, endpoint, conns)
                floor = _find(rows, "floor", workers, endpoint, conns)
                naive = _find(rows, "naive", workers, endpoint, conns)
                if polis is None:
                    continue
                lines.append(
                    f"| {endpoint} | {workers} | {conns} | {polis['rps']:,.0f} "
                    f"| {floor['rps'] if floor else 0:,.0f} | {naive['rps'] if naive else 0:,.0f} "
                    f"| {_x(_ratio(polis, floor))} | {_x(_ratio(polis, naive))} |"
                )
    return "\n".join(lines)


def issue10_table(results: dict[str, Any]) -> str:
    """Issue 10: the bulk contact import and the joined list read, each against the floor
    doing the same SQL in the same run."""
    rows: Rows = results["measurements"]
    members = (results.get("list") or {}).get("members", 0)
    per_request = {
        "members-page": min(members, results["meta"].get("page_size", members)),
        "members-all": members,
    }
    lines = [
        "| scenario | workers | conns | polis-api | floor | polis/floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    bulk = results.get("contacts_bulk") or {}
    polis, floor = bulk.get("polis-api") or {}, bulk.get("floor") or {}
    if polis or floor:
        ratio = (
            polis["items_per_s"] / floor["items_per_s"]
            if polis and floor and floor.get("items_per_s")
            else None
        )
        items = polis.get("items") or floor.get("items", 0)
        calls = polis.get("calls") or floor.get("calls", 0)
        lines.append(
            f"| `POST /v2/contacts/bulk`, {calls} calls, {items:,} new contacts | 1 | 1 "
            f"| {_items(polis)} | {_items(floor)} | {_x(ratio)} |"
        )
    for endpoint, items in per_request.items():
        for row in rows:
            if row["app"] != "polis-api" or row["endpoint"] != endpoint:
                continue
            other = _find(rows, "floor", row["workers"], endpoint, row["connections"])
            lines.append(
                f"| `GET /v1/lists/{{id}}/contact-households`, {endpoint} ({items:,} of "
                f"{members:,} members per request) | {row['workers']} | {row['connections']} "
                f"| {row['rps']:,.1f} req/s ({row['rps'] * items:,.0f} items/s) "
                f"| {other['rps'] if other else 0:,.1f} req/s | {_x(_ratio(row, other))} |"
            )
    return "\n".join(lines)


def routes_table(rows: Rows) -> str:
    """Issue 13: the change feed page and issue 11 and 12's reads, each against the floor
    sending the same statements in the same run (bench/routes.py, bench/route_floors.py)."""
    lines = [
        "| route | workers | conns | polis-api req/s | p50 ms | floor req/s | p50 ms "
        "| polis/floor | app CPU µs/req (polis / floor) | db CPU µs/req (polis / floor) "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ("feed-500", *ISSUE_11_12):
        for row in rows:
            if row["app"] != "polis-api" or row["endpoint"] != endpoint:
                continue
            floor = _find(rows, "floor", row["workers"], endpoint, row["connections"])
            errors = sum(row["errors"].values()) + (sum(floor["errors"].values()) if floor else 0)
            lines.append(
                f"| `{ROUTES[endpoint][0]}` | {row['workers']} | {row['connections']} "
                f"| {row['rps']:,.0f} | {row['p50_ms']:.1f} | {_cell(floor, 'rps', ',.0f')} "
                f"| {_cell(floor, 'p50_ms', '.1f')} | {_x(_ratio(row, floor))} "
                f"| {row['server_cpu_us']:,.0f} / {_cell(floor, 'server_cpu_us', ',.0f')} "
                f"| {row['db_cpu_us']:,.0f} / {_cell(floor, 'db_cpu_us', ',.0f')} "
                f"| {f'**{errors}**' if errors else 0} |"
            )
    return "\n".join(lines)


def _cell(row: dict[str, Any] | None, key: str, spec: str) -> str:
    return "-" if row is None else format(row[key], spec)


def _items(result: dict[str, Any]) -> str:
    if not result:
        return "-"
    if result.get("error"):
        return f"HTTP {result['status']}: {result['error'][:80]}"
    return f"{result['items_per_s']:,} items/s"


def _verdict(checks: list[bool]) -> str:
    if not checks:
        return "not measured"
    if all(checks):
        return "**met**"
    if len(checks) == 1:
        return "**not met**"
    return f"**not met** (met in {sum(checks)} of {len(checks)} cases)"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: Rows = results["measurements"]
    cases = [(w, c) for w in (1, 2) for c in (16, 64)]
    out = []

    get, detail = [], []
    for w, c in cases:
        polis = _find(rows, "polis-api", w, "get-interaction", c)
        floor, naive = (_find(rows, a, w, "get-interaction", c) for a in ("floor", "naive"))
        f, n = _ratio(polis, floor), _ratio(polis, naive)
        if f is not None and n is not None:
            get.append(f >= 0.6 and n >= 3)
            detail.append(f"{w}w/{c}c: {f:.2f}x floor, {n:.2f}x naive")
    out.append(("GET by id ≥ 0.6x floor and ≥ 3x naive", _verdict(get), "; ".join(detail)))

    lst, detail = [], []
    for w, c in cases:
        f = _ratio(_find(rows, "polis-api", w, "list-50", c), _find(rows, "floor", w, "list-50", c))
        if f is not None:
            lst.append(f >= 0.8)
            detail.append(f"{w}w/{c}c: {f:.2f}x")
    out.append(("list-50 ≥ 0.8x floor", _verdict(lst), "; ".join(detail)))

    for endpoint, how, most in (("list-50-deep", "skip", 2.0), ("list-50-after", "after=", 1.5)):
        verdicts, detail = [], []
        for w, c in cases:
            first = _find(rows, "polis-api", w, "list-50", c)
            far = _find(rows, "polis-api", w, endpoint, c)
            if first and far:
                ratio = far["p50_ms"] / first["p50_ms"]
                verdicts.append(ratio <= most)
                detail.append(f"{w}w/{c}c: {ratio:.2f}x")
        target = f"deep page ({how}) p50 ≤ {most:g}x first page p50"
        out.append((target, _verdict(verdicts), "; ".join(detail)))

    post, detail = [], []
    for w, c in cases:
        f = _ratio(
            _find(rows, "polis-api", w, "post-interaction", c),
            _find(rows, "floor", w, "post-interaction", c),
        )
        if f is not None:
            post.append(f >= 0.6)
            detail.append(f"{w}w/{c}c: {f:.2f}x")
    out.append(("POST interaction ≥ 0.6x the write floor", _verdict(post), "; ".join(detail)))

    # The outbox runs at its own connection count: every row of it is compared.
    outbox, detail = [], []
    for row in rows:
        if row["app"] != "polis-api" or row["endpoint"] != "bulk-interactions":
            continue
        floor = _find(rows, "floor", row["workers"], "bulk-interactions", row["connections"])
        f = _ratio(row, floor)
        if f is not None:
            outbox.append(f >= 0.5)
            detail.append(f"{row['workers']}w/{row['connections']}c: {f:.2f}x")
    out.append(
        ("bulk of 200 knocks ≥ 0.5x the write floor's rate", _verdict(outbox), "; ".join(detail))
    )

    feed, detail = [], []
    for row in rows:
        if row["app"] != "polis-api" or row["endpoint"] != "feed-500":
            continue
        f = _ratio(row, _find(rows, "floor", row["workers"], "feed-500", row["connections"]))
        if f is not None:
            feed.append(f >= 0.7)
            detail.append(f"{row['workers']}w/{row['connections']}c: {f:.2f}x")
    out.append(("change feed page of 500 ≥ 0.7x floor", _verdict(feed), "; ".join(detail)))

    bulk = results.get("bulk") or {}
    create, copy = bulk.get("create") or {}, bulk.get("copy") or {}
    if create.get("rows_per_s") and copy.get("copy_rows_per_s"):
        ratio = create["rows_per_s"] / copy["copy_rows_per_s"]
        out.append(
            (
                "bulk ≥ 0.5x COPY of the same rows",
                _verdict([ratio >= 0.5]),
                f"{create['rows_per_s']:,} rows/s vs COPY {copy['copy_rows_per_s']:,} "
                f"rows/s = {ratio:.3f}x",
            )
        )
    else:
        out.append(("bulk ≥ 0.5x COPY of the same rows", "not measured", str(create)))

    plans = {p["name"]: p for p in results.get("plans", [])}
    indexed = [name for name in FILTER_PLANS if name in plans]
    missing = [n for n in indexed if not plans[n]["uses_index"]]
    out.append(
        (
            "every allowed filter, the door list and delta sync use an index",
            _verdict([not missing]) if indexed else "not measured",
            ("no index: " + ", ".join(missing)) if missing else "all by an index",
        )
    )
    out.append(
        (
            "list-50 p50 at 10 M ≤ 1.3x at 100 k",
            "not measured in this run",
            "run with --scale 0.1 and --scale 10 (see docs/performance.md)",
        )
    )
    stream = results.get("stream") or {}
    if stream:
        ok = stream["rss_growth_mb"] < 100 and stream["status"] == 200
        out.append(
            (
                "limit=9007199254740991 streamed, RSS growth < 100 MB",
                _verdict([ok]),
                f"{stream['documents']:,} documents, {stream['bytes'] / 1e6:,.0f} MB in "
                f"{stream['seconds']} s, RSS +{stream['rss_growth_mb']} MB",
            )
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        f"# polis-api benchmark — {meta['started']}",
        "",
        f"Commit `{meta['commit']}`{' + uncommitted changes' if meta['dirty'] else ''}; "
        f"{meta['cpus']} cores; dataset `{meta['database']}` "
        f"({meta['interactions']:,} interactions); wrk {meta['warmup']:g} s warm-up, "
        f"{meta['seconds']:g} s measured; {meta['command']}; {meta.get('total_s', 0) / 60:.1f} min",
        "",
        _noise(results),
        "",
        "## Targets (issues 4 and 13)",
        "",
        "| target | verdict | detail |",
        "|---|---|---|",
        *[f"| {t} | {v} | {d} |" for t, v, d in targets(results)],
        "",
        "## polis-api against the floor and the naive app",
        "",
        ratio_table(results["measurements"]),
        "",
        "## Issue 10: bulk contacts and the joined list read against the floor",
        "",
        issue10_table(results),
        "",
        "## Issue 13: the change feed and issue 11/12 routes against their floor",
        "",
        "The floor sends each route's own statements (bench/route_floors.py); app and db",
        "CPU as below. Paths: bench/data/<dataset>/route-<name>.txt (bench/routes.py).",
        "",
        routes_table(results["measurements"]),
        "",
        "## Every measurement",
        "",
        "app CPU and db CPU: CPU seconds of the server's processes and of PostgreSQL's over",
        "the measured window, per request. other load: CPU used by anything else on the",
        "machine in that window (a busy neighbour makes the numbers unreliable).",
        "",
        measurement_table(results["measurements"]),
        "",
        _one_shots(results),
        "",
        "## Plans of the hot statements (EXPLAIN ANALYZE)",
        "",
        "| statement | indexes | condition no index serves | seq scan | sort | ms |",
        "|---|---|---|---|---|---:|",
        *[_plan_row(p) for p in results.get("plans", [])],
        "",
    ]
    return "\n".join(parts)


def _noise(results: dict[str, Any]) -> str:
    rows = results["measurements"]
    other = sum(r["other_cpu_pct"] for r in rows) / len(rows) if rows else 0.0
    before = results["meta"].get("load_before_pct", 0)
    text = (
        f"Other processes kept {before} % of the CPUs busy before the run and {other:.0f} % "
        "on average during the measured windows"
    )
    if max(before, other) >= 15:
        return f"**{text}: this run shared the machine, so its absolute numbers are low.**"
    return text + "."


def _plan_row(p: dict[str, Any]) -> str:
    took = p["ms"] if p["ms"] is not None else "(plan only)"
    seq, sort = ("yes" if p["sequential"] else ""), ("yes" if p["sort"] else "")
    unserved = ", ".join(f"`{key}`" for key in p.get("unserved", []))
    indexes = ", ".join(p["indexes"]) or "-"
    return f"| {p['name']} | {indexes} | {unserved} | {seq} | {sort} | {took} |"


def _one_shots(results: dict[str, Any]) -> str:
    lines = ["## Writes in bulk and the full stream", ""]
    probe = results.get("copy_interactions")
    loaded = results.get("dataset", {}).get("copy_rows_per_s", {}).get("interactions", "-")
    if probe:
        lines.append(
            f"- interactions: COPY {probe['copy_rows_per_s']:,} rows/s ({probe['rows']:,} rows); "
            f"one INSERT per row (autocommit) {probe['insert_rows_per_s']:,} rows/s "
            f"({probe['insert_sample']:,} rows); the dataset's own load (indexes built "
            f"after): {loaded} rows/s"
        )
    bulk = results.get("bulk") or {}
    if bulk:
        copy = bulk["copy"]
        lines.append(
            f"- door records, the bulk call's rows: COPY {copy['copy_rows_per_s']:,} rows/s; "
            f"one INSERT per row {copy['insert_rows_per_s']:,} rows/s"
        )
        for kind in ("create", "update"):
            b = bulk.get(kind) or {}
            if b:
                lines.append(
                    f"- `POST /v1/campaigns/contact-households/bulk`, {b['items']:,} items "
                    f"({kind}): HTTP {b['status']}, {b['seconds']} s, {b['rows_per_s']:,} rows/s"
                    + (f" — {b['error']}" if b.get("error") else "")
                )
    contacts = results.get("contacts_copy")
    polis = (results.get("contacts_bulk") or {}).get("polis-api") or {}
    if contacts:
        rate = polis.get("items_per_s", 0)
        lines.append(
            f"- contacts, the bulk calls' rows: COPY {contacts['copy_rows_per_s']:,} rows/s; "
            f"one INSERT per row {contacts['insert_rows_per_s']:,} rows/s; "
            f"`POST /v2/contacts/bulk` {rate:,} items/s "
            f"({rate / contacts['copy_rows_per_s']:.2f}x COPY)"
        )
    stream = results.get("stream")
    if stream:
        lines.append(
            f"- `GET /v2/interactions?limit=9007199254740991`: HTTP {stream['status']}, "
            f"{stream['documents']:,} documents, {stream['bytes'] / 1e6:,.0f} MB in "
            f"{stream['seconds']} s ({stream['mb_per_s']} MB/s, first byte after "
            f"{stream['first_byte_s']} s); worker RSS {stream['rss_baseline_mb']} MB → peak "
            f"{stream['rss_peak_mb']} MB (+{stream['rss_growth_mb']} MB)"
        )
    ablation = results.get("ablation") or []
    for row in ablation:
        lines.append(
            f"- ablation, {row['label']}: get-interaction x{row['workers']}/{row['connections']}c "
            f"{row['rps']:,.0f} req/s, p50 {row['p50_ms']:.2f} ms, app CPU "
            f"{row['server_cpu_us']:,.0f} µs/req"
        )
    return "\n".join(lines)

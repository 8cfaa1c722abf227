"""An open-loop load generator for Herd's API: requests go out at a fixed
rate whatever the answers do, so a slow server shows as latency and errors
rather than as a generator that politely slows down with it.

The mix is what staff and customers read while a rollout runs: the fleet's
servers, one server, the rollout and its servers, the audit logs, jobs. The
ids it needs are found before the clock starts (the newest rollout, the
first servers, a job, the customer's organisation); the sequence of requests
is drawn from a fixed seed, so two runs send the same requests in the same
order.

Latency is measured from the moment a request was due, not from when it
left: a generator that falls behind counts its own lag against the server
instead of hiding it (coordinated omission). The send lag is printed too,
and "kept the rate" says whether every planned request was sent and 99 % of
them left within 25 ms of their time.

    python -m bench.loadgen --url http://127.0.0.1:8000 --token STAFF_TOKEN \\
        [--customer-token OWNER_TOKEN] [--rate 20] [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

# A request left late by more than this missed its slot.
LAG_TOLERANCE_SECONDS = 0.025
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Call:
    name: str
    path: str
    staff: bool  # which token: staff's, or the customer's


@dataclass(frozen=True)
class Outcome:
    name: str
    lag: float  # seconds between when it was due and when it left
    latency: float  # seconds between when it was due and its answer
    status: int  # 0 for a transport error or timeout


@dataclass(frozen=True)
class Summary:
    rate: float
    seconds: float
    planned: int
    sent: int
    completed: int  # 2xx answers
    errors: int  # anything else: non-2xx, timeouts, transport errors
    throughput: float  # 2xx answers per second of the run
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    kept_rate: bool
    error_kinds: dict[str, int]
    per_call_p95_ms: dict[str, float]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted values (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def discover(url: str, token: str, customer_token: str | None) -> list[tuple[Call, int]]:
    """The mix, as (call, weight), with ids read from the API before the run."""
    staff = httpx.Client(base_url=f"{url}/api/v1", headers=_auth(token), timeout=30)
    with staff:
        servers = [s["id"] for s in _items(staff, "/servers", limit=20)]
        rollouts = _items(staff, "/rollouts", limit=1)
        jobs = [j["id"] for j in _items(staff, "/jobs", limit=5)]
    if not servers:
        raise SystemExit("no servers to read: provision some first")
    mix: list[tuple[Call, int]] = [
        (Call("staff: list servers", "/servers?limit=50", True), 3),
        (Call("staff: get a server", f"/servers/{servers[0]}", True), 3),
        (Call("staff: fleet audit log", "/audit?limit=50", True), 1),
        (Call("staff: list jobs", "/jobs?limit=50", True), 2),
    ]
    if jobs:
        mix.append((Call("staff: get a job", f"/jobs/{jobs[-1]}", True), 1))
    if rollouts:
        rollout = rollouts[0]["id"]
        mix += [
            (Call("staff: get the rollout", f"/rollouts/{rollout}", True), 3),
            (
                Call(
                    "staff: the rollout's servers", f"/rollouts/{rollout}/servers?limit=100", True
                ),
                2,
            ),
        ]
    if customer_token:
        with httpx.Client(
            base_url=f"{url}/api/v1", headers=_auth(customer_token), timeout=30
        ) as customer:
            me = customer.get("/me")
            me.raise_for_status()
            org = next(iter(me.json()["organisations"]))
            own = [s["id"] for s in _items(customer, f"/organisations/{org}/servers", limit=20)]
        mix += [
            (Call("customer: list servers", f"/organisations/{org}/servers?limit=50", False), 2),
            (Call("customer: audit log", f"/organisations/{org}/audit?limit=50", False), 1),
        ]
        if own:
            mix += [
                (Call("customer: get a server", f"/servers/{own[-1]}", False), 2),
                (Call("customer: a server's jobs", f"/servers/{own[-1]}/jobs", False), 1),
            ]
    return mix


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _items(client: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    response = client.get(path, params={"limit": limit})
    response.raise_for_status()
    return list(response.json()["items"])


def schedule(mix: list[tuple[Call, int]], count: int, seed: int = 9) -> list[Call]:
    calls, weights = zip(*mix, strict=True)
    return random.Random(seed).choices(calls, weights=weights, k=count)


async def _one(
    client: httpx.AsyncClient, call: Call, headers: dict[str, str], due: float
) -> Outcome:
    left = time.perf_counter()
    try:
        response = await client.get(call.path, headers=headers)
        status = response.status_code
    except httpx.HTTPError:
        status = 0
    return Outcome(call.name, left - due, time.perf_counter() - due, status)


async def run(
    url: str, token: str, customer_token: str | None, calls: list[Call], rate: float
) -> tuple[list[Outcome], float]:
    """Send ``calls`` at ``rate`` a second; every answer, and the run's wall
    time (first due request to last answer)."""
    staff, customer = _auth(token), _auth(customer_token or token)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=f"{url}/api/v1", timeout=TIMEOUT_SECONDS, limits=limits
    ) as client:
        # Once each, untimed: the connection, the generator's lazy imports and
        # the API's first-call costs are not what the run measures.
        for call in dict.fromkeys(calls):
            await client.get(call.path, headers=staff if call.staff else customer)
        tasks = []
        start = time.perf_counter() + 0.05
        for index, call in enumerate(calls):
            due = start + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            headers = staff if call.staff else customer
            tasks.append(asyncio.create_task(_one(client, call, headers, due)))
        outcomes = list(await asyncio.gather(*tasks))
    return outcomes, time.perf_counter() - start


def summarise(outcomes: list[Outcome], rate: float, seconds: float, wall: float) -> Summary:
    ok = [o for o in outcomes if 200 <= o.status < 300]
    latencies = [o.latency for o in ok]
    lags = [o.lag for o in outcomes]
    kinds: dict[str, int] = {}
    for outcome in outcomes:
        if not 200 <= outcome.status < 300:
            key = f"HTTP {outcome.status}" if outcome.status else "no answer"
            kinds[key] = kinds.get(key, 0) + 1
    per_call: dict[str, list[float]] = {}
    for outcome in ok:
        per_call.setdefault(outcome.name, []).append(outcome.latency)
    planned = int(rate * seconds)
    return Summary(
        rate=rate,
        seconds=seconds,
        planned=planned,
        sent=len(outcomes),
        completed=len(ok),
        errors=len(outcomes) - len(ok),
        throughput=len(ok) / wall if wall else 0.0,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p95_ms=percentile(latencies, 0.95) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=0.0) * 1000,
        lag_p99_ms=percentile(lags, 0.99) * 1000,
        lag_max_ms=max(lags, default=0.0) * 1000,
        kept_rate=len(outcomes) == planned and percentile(lags, 0.99) <= LAG_TOLERANCE_SECONDS,
        error_kinds=kinds,
        per_call_p95_ms={
            name: percentile(values, 0.95) * 1000 for name, values in sorted(per_call.items())
        },
    )


def report(summary: Summary, label: str = "") -> str:
    head = f"{label}: " if label else ""
    lines = [
        f"{head}{summary.rate:g} req/s for {summary.seconds:g} s: sent {summary.sent} of "
        f"{summary.planned}, completed (2xx) {summary.completed}, errors {summary.errors}"
        + (f" {summary.error_kinds}" if summary.error_kinds else ""),
        f"  throughput {summary.throughput:.1f} req/s; latency p50 {summary.p50_ms:.1f} ms, "
        f"p95 {summary.p95_ms:.1f} ms, p99 {summary.p99_ms:.1f} ms, max {summary.max_ms:.1f} ms",
        f"  kept the rate: {'yes' if summary.kept_rate else 'NO'} (send lag p99 "
        f"{summary.lag_p99_ms:.1f} ms, max {summary.lag_max_ms:.1f} ms; tolerance "
        f"{LAG_TOLERANCE_SECONDS * 1000:.0f} ms)",
        "  p95 per request: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in summary.per_call_p95_ms.items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Herd's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a staff token (read and staff scopes)")
    parser.add_argument("--customer-token", help="an organisation member's token")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--seed", type=int, default=9, help="draws the sequence of requests")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    mix = discover(args.url, args.token, args.customer_token)
    calls = schedule(mix, int(args.rate * args.seconds), args.seed)
    outcomes, wall = asyncio.run(run(args.url, args.token, args.customer_token, calls, args.rate))
    summary = summarise(outcomes, args.rate, args.seconds, wall)
    print(json.dumps(asdict(summary)) if args.json else report(summary), flush=True)


if __name__ == "__main__":
    main()

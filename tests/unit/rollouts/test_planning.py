"""Planning without a database: wave sizes, budgets, windows in time zones
across DST, and the dry run's order and timing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.rollouts.planning import (
    Candidate,
    Timing,
    budget_count,
    plan_rollout,
    wave_sizes,
)
from controlplane.rollouts.windows import WeeklyWindow, is_open, next_opening


@pytest.mark.parametrize(
    ("spec", "total", "sizes"),
    [
        ([1, "5%", "25%", "100%"], 100, [1, 5, 25, 69]),
        ([1, "5%", "25%", "100%"], 6, [1, 1, 1, 3]),  # a percentage is at least 1
        ([2], 7, [2, 2, 2, 1]),  # the last size repeats
        (["50%"], 5, [2, 2, 1]),
        ([1, 10], 1, [1]),
        ([3], 0, []),
        (["100%"], 4, [4]),
    ],
)
def test_wave_sizes_follow_ansible_serial(spec: list, total: int, sizes: list[int]) -> None:
    assert wave_sizes(spec, total) == sizes


@pytest.mark.parametrize("bad", [[], [0], ["0%"], ["101%"], ["x"], [-1], [True]])
def test_bad_wave_sizes_are_refused(bad: list) -> None:
    with pytest.raises(ValueError, match="wave"):
        wave_sizes(bad, 10)


@pytest.mark.parametrize(
    ("spec", "total", "tolerated"),
    [(0, 10, 0), ("2", 10, 2), ("10%", 50, 5), ("10%", 9, 0), ("25%", 10, 2), ("100%", 3, 3)],
)
def test_budget_arithmetic(spec: int | str, total: int, tolerated: int) -> None:
    assert budget_count(spec, total) == tolerated


def test_windows_are_in_local_time() -> None:
    monday_2am = [WeeklyWindow(1, 120, 60)]
    # 2026-03-09 is a Monday; Berlin is UTC+1 in March before the switch.
    assert is_open(datetime(2026, 3, 9, 1, 30, tzinfo=UTC), "Europe/Berlin", monday_2am)
    assert not is_open(datetime(2026, 3, 9, 2, 30, tzinfo=UTC), "Europe/Berlin", monday_2am)
    assert next_opening(
        datetime(2026, 3, 9, 2, 30, tzinfo=UTC), "Europe/Berlin", monday_2am
    ) == datetime(2026, 3, 16, 1, 0, tzinfo=UTC)
    # New York is UTC-4 on 9 March 2026 (its switch is a fortnight earlier).
    assert next_opening(
        datetime(2026, 3, 9, 0, 0, tzinfo=UTC), "America/New_York", monday_2am
    ) == datetime(2026, 3, 9, 6, 0, tzinfo=UTC)


def test_windows_keep_their_wall_clock_time_across_dst() -> None:
    sunday_1am = [WeeklyWindow(7, 60, 120)]
    # Berlin: 22 March 2026 is winter time (UTC+1), 29 March the switch
    # (01:00 exists, UTC+1), 5 April summer time (UTC+2).
    before = datetime(2026, 3, 21, 12, tzinfo=UTC)
    assert next_opening(before, "Europe/Berlin", sunday_1am) == datetime(2026, 3, 22, 0, tzinfo=UTC)
    after = datetime(2026, 4, 1, tzinfo=UTC)
    assert next_opening(after, "Europe/Berlin", sunday_1am) == datetime(2026, 4, 4, 23, tzinfo=UTC)
    # A window that starts in the spring-forward gap (02:30 does not exist on
    # 29 March) opens an hour later by the wall clock: 03:30 CEST.
    gap = [WeeklyWindow(7, 150, 60)]
    assert next_opening(datetime(2026, 3, 28, tzinfo=UTC), "Europe/Berlin", gap) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # In the autumn repeat (02:30 happens twice on 25 October) it opens at
    # the first 02:30, still summer time.
    assert next_opening(datetime(2026, 10, 24, tzinfo=UTC), "Europe/Berlin", gap) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_a_window_across_midnight_is_open_after_midnight() -> None:
    saturday_11pm = [WeeklyWindow(6, 23 * 60, 180)]
    # Sunday 00:30 in Tokyo (UTC+9) is inside Saturday's 23:00 + 3 h.
    assert is_open(datetime(2026, 3, 14, 15, 30, tzinfo=UTC), "Asia/Tokyo", saturday_11pm)


def test_no_windows_means_any_time() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_open(now, "UTC", ())
    assert next_opening(now, "UTC", ()) == now


def _candidates(n: int, version: str = "4.5.1", **kw: object) -> list[Candidate]:
    org = uuid.uuid4()
    return [Candidate(uuid.uuid4(), org, f"s{i}.example", version, **kw) for i in range(n)]  # type: ignore[arg-type]


def test_plan_puts_the_canary_first_and_skips_servers_on_the_target() -> None:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    servers = _candidates(6)
    servers.insert(2, Candidate(uuid.uuid4(), uuid.uuid4(), "done.example", "4.5.2"))
    plan = plan_rollout(servers, "v4.5.2", [1, "50%", "100%"], "20%", now, Timing(concurrency=2))
    waves = {s.domain: s.wave for s in plan.servers}
    assert waves["s0.example"] == 0
    assert waves["done.example"] == -1
    assert [w.size for w in plan.waves] == [1, 3, 2]
    assert plan.to_upgrade == 6
    assert plan.failure_budget == 1
    skipped = next(s for s in plan.servers if s.domain == "done.example")
    assert skipped.skip_reason == "already on v4.5.2"


def test_plan_timing_follows_concurrency_soak_and_windows() -> None:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)  # Monday noon UTC
    timing = Timing(
        concurrency=2, soak=timedelta(minutes=30), upgrade_duration=timedelta(minutes=10)
    )
    plan = plan_rollout(_candidates(5), "v4.6.0", [1, "100%"], 0, now, timing)
    assert plan.waves[0].starts_at == now
    assert plan.waves[0].ends_at == now + timedelta(minutes=10)
    second = now + timedelta(minutes=40)
    starts = sorted(s.starts_at for s in plan.servers if s.wave == 1)  # type: ignore[type-var]
    assert starts == [
        second,
        second,
        second + timedelta(minutes=10),
        second + timedelta(minutes=10),
    ]

    # Tuesday 03:00 in Berlin: the whole wave waits for it.
    tuesday = (WeeklyWindow(2, 180, 120),)
    plan = plan_rollout(
        _candidates(2, windows=tuesday, timezone="Europe/Berlin"),
        "v4.6.0",
        ["100%"],
        0,
        now,
        timing,
    )
    assert {s.starts_at for s in plan.servers} == {datetime(2026, 1, 6, 2, tzinfo=UTC)}
    # Urgent with an hour's notice: it goes at 13:00 UTC, outside the window.
    urgent = Timing(concurrency=2, urgent=True, notice=timedelta(hours=1))
    plan = plan_rollout(
        _candidates(1, windows=tuesday, timezone="Europe/Berlin"),
        "v4.6.0",
        ["100%"],
        0,
        now,
        urgent,
    )
    assert plan.servers[0].starts_at == now + timedelta(hours=1)

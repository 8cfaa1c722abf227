"""Release catalogue, maintenance windows and rollouts over HTTP. Thin:
parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query
from sqlmodel import Session

from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page
from controlplane.rollouts import releases, service
from controlplane.rollouts.models import MaintenanceWindow, Rollout, RolloutState
from controlplane.rollouts.planning import RolloutPlan
from controlplane.rollouts.schemas import (
    ImportResult,
    PlannedServerOut,
    PlannedWaveOut,
    PlanOut,
    ReleaseCreate,
    ReleaseImport,
    ReleaseOut,
    RolloutOut,
    RolloutSpec,
    SeriesEntry,
    SeriesOut,
    TargetOut,
    WaveProgress,
    WindowOut,
    WindowsOut,
    WindowsPut,
)
from controlplane.sqltypes import utcnow

router = APIRouter(prefix=API_PREFIX, tags=["rollouts"])


def _release_out(row: object, series: object) -> ReleaseOut:
    out = ReleaseOut.model_validate(row)
    if series is not None:
        out.end_of_support = series.end_of_support  # type: ignore[attr-defined]
        out.supported = releases.is_supported(series, utcnow().date())  # type: ignore[arg-type]
    return out


@router.get("/releases", response_model=list[ReleaseOut])
def list_releases(principal: PrincipalDep, session: SessionDep) -> list[ReleaseOut]:
    """Staff: the release catalogue, newest first, with each series' support."""
    return [_release_out(r, s) for r, s in releases.list_all(session, principal)]


@router.post("/releases", response_model=ReleaseOut, status_code=201)
def create_release(data: ReleaseCreate, principal: PrincipalDep, session: SessionDep) -> ReleaseOut:
    """Staff: publish a release to the catalogue, so rollouts may target it."""
    return ReleaseOut.model_validate(releases.create(session, principal, data))


@router.post("/releases/import", response_model=ImportResult)
def import_releases(
    data: ReleaseImport, principal: PrincipalDep, session: SessionDep
) -> ImportResult:
    """Staff: apply an import file; importing it again changes nothing."""
    created, unchanged, series = releases.import_catalogue(session, principal, data)
    return ImportResult(
        created=created,
        unchanged=unchanged,
        series=[SeriesOut.model_validate(s) for s in series],
    )


@router.put("/releases/series", response_model=SeriesOut)
def set_series(data: SeriesEntry, principal: PrincipalDep, session: SessionDep) -> SeriesOut:
    """Staff: set (or clear) when a series stops being supported."""
    row = releases.set_end_of_support(session, principal, data.series, data.end_of_support)
    return SeriesOut.model_validate(row)


def _windows_out(org_timezone: str, rows: list[MaintenanceWindow]) -> WindowsOut:
    return WindowsOut(
        timezone=org_timezone,
        windows=[
            WindowOut(
                id=w.id,
                weekday=w.weekday,
                start=f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
                duration_minutes=w.duration_minutes,
                server_id=w.server_id,
            )
            for w in rows
        ],
    )


@router.get("/organisations/{org_id}/maintenance-windows", response_model=WindowsOut)
def list_windows(org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> WindowsOut:
    org, rows = service.list_windows(session, principal, org_id)
    return _windows_out(org.timezone, rows)


@router.put("/organisations/{org_id}/maintenance-windows", response_model=WindowsOut)
def replace_windows(
    org_id: uuid.UUID, data: WindowsPut, principal: PrincipalDep, session: SessionDep
) -> WindowsOut:
    """Replace the organisation's weekly maintenance windows (its time zone)."""
    org, rows = service.replace_windows(session, principal, org_id, data)
    return _windows_out(org.timezone, rows)


def _plan_out(plan: RolloutPlan) -> PlanOut:
    return PlanOut(
        target=plan.target,
        failure_budget=plan.failure_budget,
        to_upgrade=plan.to_upgrade,
        waves=[PlannedWaveOut.model_validate(w) for w in plan.waves],
        servers=[
            PlannedServerOut(
                server_id=s.server_id,
                organisation_id=s.organisation_id,
                domain=s.domain,
                version=s.version,
                wave=s.wave if s.wave >= 0 else None,
                skip_reason=s.skip_reason,
                starts_at=s.starts_at,
            )
            for s in sorted(plan.servers, key=lambda s: (s.wave, s.position))
        ],
    )


def rollout_out(session: Session, rollout: Rollout) -> RolloutOut:
    out = RolloutOut.model_validate(rollout)
    per_wave = service.wave_counts(session, rollout.id)
    for wave, counts in sorted(per_wave.items()):
        for state, number in counts.items():
            out.counts[state] = out.counts.get(state, 0) + number
        if wave >= 0:
            out.progress.append(
                WaveProgress(index=wave, size=sum(counts.values()), counts=dict(counts))
            )
    out.failures = out.counts.get("failed", 0)
    return out


@router.post("/rollouts/plan", response_model=PlanOut)
def plan_rollout(spec: RolloutSpec, principal: PrincipalDep, session: SessionDep) -> PlanOut:
    """Staff: the dry run: which server lands in which wave, and when."""
    return _plan_out(service.preview(session, principal, spec, utcnow()))


def _kick() -> None:
    # Start the first wave now rather than at the next tick.
    from provisioning.rollouts import send_advance

    send_advance()


@router.post("/rollouts", response_model=RolloutOut, status_code=201)
def start_rollout(
    spec: RolloutSpec, principal: PrincipalDep, session: SessionDep, background: BackgroundTasks
) -> RolloutOut:
    """Staff: start a rollout; the engine works through it wave by wave."""
    rollout = service.start(session, principal, spec, utcnow())
    session.flush()
    background.add_task(_kick)
    return rollout_out(session, rollout)


@router.get("/rollouts", response_model=Page[RolloutOut])
def list_rollouts(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    state: Annotated[RolloutState | None, Query()] = None,
) -> Page[RolloutOut]:
    rows, cursor = service.list_rollouts(session, principal, page, state)
    return Page(items=[rollout_out(session, r) for r in rows], next_cursor=cursor)


@router.get("/rollouts/{rollout_id}", response_model=RolloutOut)
def get_rollout(rollout_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> RolloutOut:
    return rollout_out(session, service.get(session, principal, rollout_id))


@router.get("/rollouts/{rollout_id}/servers", response_model=Page[TargetOut])
def list_rollout_servers(
    rollout_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[TargetOut]:
    rows, cursor = service.list_targets(session, principal, rollout_id, page)
    items = []
    for target, domain in rows:
        item = TargetOut.model_validate(target)
        item.domain = domain
        items.append(item)
    return Page(items=items, next_cursor=cursor)


def _steer_route(action: str, doc: str) -> None:
    def endpoint(rollout_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> RolloutOut:
        rollout = service.steer(session, principal, rollout_id, action, utcnow())
        return rollout_out(session, rollout)

    endpoint.__name__, endpoint.__doc__ = f"{action}_rollout", doc
    router.post(f"/rollouts/{{rollout_id}}/{action}", response_model=RolloutOut)(endpoint)


for _action, _doc in (
    ("pause", "Staff: start no more servers; running upgrades finish."),
    ("resume", "Staff: carry on with a paused rollout."),
    ("abort", "Staff: stop for good; running upgrades finish and are recorded."),
):
    _steer_route(_action, _doc)

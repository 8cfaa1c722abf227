"""The release catalogue: the Mastodon releases staff publish to the fleet,
and until when each series is supported."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.problems import AlreadyExists, InvalidInput, NotFound
from controlplane.rollouts.models import CatalogueRelease, ReleaseSeries
from controlplane.rollouts.schemas import ReleaseCreate, ReleaseImport
from controlplane.servers.upgrades import Release

# Publishing releases and rolling them out are the same power: operators
# patch the fleet (DESIGN.md, "hosting staff").
MANAGE = StaffPerm.servers_suspend


def parse_tag(tag: str) -> Release:
    release = Release.from_tag(tag)
    if release is None:
        raise InvalidInput(
            f"'{tag}' is not a release tag: use vMAJOR.MINOR.PATCH such as v4.6.0", field="tag"
        )
    return release


def series_of(release: Release) -> str:
    return f"{release.major}.{release.minor}"


def _ensure_series(session: Session, series: str) -> ReleaseSeries:
    row = session.get(ReleaseSeries, series)
    if row is None:
        row = ReleaseSeries(series=series)
        session.add(row)
        session.flush()
    return row


def _add(session: Session, data: ReleaseCreate) -> CatalogueRelease:
    release = parse_tag(data.tag)
    _ensure_series(session, series_of(release))
    row = CatalogueRelease(
        tag=release.tag,
        series=series_of(release),
        **data.model_dump(exclude={"tag"}),
    )
    session.add(row)
    session.flush()
    return row


def create(session: Session, principal: Principal, data: ReleaseCreate) -> CatalogueRelease:
    principal.require_staff(MANAGE)
    if find(session, parse_tag(data.tag).tag) is not None:
        raise AlreadyExists(f"{data.tag} is already in the catalogue")
    row = _add(session, data)
    audit.record(session, principal, "release.create", "release", row.id, None, {"tag": row.tag})
    return row


def find(session: Session, tag: str) -> CatalogueRelease | None:
    return session.exec(select(CatalogueRelease).where(CatalogueRelease.tag == tag)).first()


def get(session: Session, tag: str) -> CatalogueRelease:
    row = find(session, tag)
    if row is None:
        raise NotFound(f"{tag} is not in the release catalogue; add it first")
    return row


def list_all(
    session: Session, principal: Principal
) -> list[tuple[CatalogueRelease, ReleaseSeries | None]]:
    """Every release, newest first, with its series (the catalogue is small:
    a few dozen tags a year)."""
    principal.require_staff(StaffPerm.fleet_read)
    rows = session.exec(select(CatalogueRelease)).all()
    series = {s.series: s for s in session.exec(select(ReleaseSeries)).all()}
    ordered = sorted(rows, key=lambda r: parse_tag(r.tag).sort_key(), reverse=True)
    return [(row, series.get(row.series)) for row in ordered]


def is_supported(series: ReleaseSeries | None, today: date) -> bool:
    return series is None or series.end_of_support is None or today <= series.end_of_support


def set_end_of_support(
    session: Session, principal: Principal, series: str, end: date | None
) -> ReleaseSeries:
    principal.require_staff(MANAGE)
    row = _ensure_series(session, series)
    row.end_of_support = end
    session.add(row)
    audit.record(
        session,
        principal,
        "release.series",
        "release_series",
        series,
        None,
        {"end_of_support": end.isoformat() if end else None},
    )
    return row


def import_catalogue(
    session: Session, principal: Principal, data: ReleaseImport
) -> tuple[list[str], list[str], list[ReleaseSeries]]:
    """Apply an import file: new tags are added, tags already known are left
    as they are (so the same file can be imported again), series dates are
    set as given."""
    principal.require_staff(MANAGE)
    created, unchanged = [], []
    for entry in data.releases:
        tag = parse_tag(entry.tag).tag
        if find(session, tag) is not None:
            unchanged.append(tag)
            continue
        created.append(_add(session, entry).tag)
    series = []
    for item in data.series:
        row = _ensure_series(session, item.series)
        row.end_of_support = item.end_of_support
        session.add(row)
        series.append(row)
    audit.record(
        session,
        principal,
        "release.import",
        "release",
        None,
        None,
        {"created": created, "series": [s.series for s in series]},
    )
    return created, unchanged, sorted(series, key=lambda s: s.series)

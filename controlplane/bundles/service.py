"""Pulling an organisation's bundle and receiving the reports of its runs.

Who may pull: a token carrying the `playbooks` scope, of someone whose role
configures the organisation's servers (owner, admin; a staff admin), for an
organisation with a support contract in force. The checks run in that
order after visibility, so an organisation the caller cannot see answers 404
like a missing one, and each refusal says which condition failed.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, Scope, StaffPerm
from controlplane.billing.addons import support_contract_active
from controlplane.bundles import bundle as bundles
from controlplane.bundles.errors import NoSupportContract
from controlplane.bundles.models import PlaybookReport
from controlplane.bundles.schemas import ReportCreate
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import NotFound
from controlplane.servers.models import Server
from controlplane.tenancy.models import Organisation

# Pulling a bundle hands over how the servers are configured (and, asked
# for, their secrets): the power of the roles that configure them.
PULL = Perm.servers_update


def _playbooks_caller(session: Session, principal: Principal, org_id: uuid.UUID) -> Organisation:
    if not principal.can_see(org_id):
        raise NotFound("organisation not found")
    principal.require_scope(Scope.playbooks)
    principal.require(org_id, PULL)
    organisation = session.get(Organisation, org_id)
    if organisation is None:  # staff "see" any id
        raise NotFound("organisation not found")
    return organisation


def pull(
    session: Session, principal: Principal, org_id: uuid.UUID, passphrase: str | None
) -> bundles.Bundle:
    """The organisation's signed bundle; its servers' secrets in it,
    vault-encrypted under `passphrase`, only when one is given."""
    organisation = _playbooks_caller(session, principal, org_id)
    if not support_contract_active(session, org_id):
        raise NoSupportContract(
            "playbook bundles come with a support contract, and this organisation has none "
            "in force; order one (POST /organisations/{id}/addons/support)"
        )
    bundle = bundles.build(session, organisation, passphrase)
    audit.record(
        session,
        principal,
        "playbooks.pull",
        "organisation",
        org_id,
        org_id,
        {
            "bundle_version": bundle.version,
            "sha256": bundle.sha256,
            "secrets": bundle.secrets,
            "servers": [s.name for s in bundle.servers],
        },
    )
    return bundle


def record_report(
    session: Session, principal: Principal, org_id: uuid.UUID, data: ReportCreate
) -> PlaybookReport:
    """Store a run's summary. A contract is not asked for: a team whose
    contract has just ended still tells staff what it ran on the servers."""
    _playbooks_caller(session, principal, org_id)
    names = [h.host for h in data.hosts]
    server_ids = dict(
        session.exec(
            select(Server.domain, Server.id).where(
                Server.organisation_id == org_id, col(Server.domain).in_(names)
            )
        ).all()
    )
    hosts = []
    for recap in sorted(data.hosts, key=lambda h: h.host):
        server_id = server_ids.get(recap.host)
        hosts.append({**recap.model_dump(), "server_id": str(server_id) if server_id else None})
    report = PlaybookReport(
        organisation_id=org_id,
        reported_by_user_id=principal.user_id,
        reported_by_token_id=principal.token_id,
        playbook=data.playbook,
        status=data.status,
        bundle_version=data.bundle_version,
        started_at=data.started_at,
        finished_at=data.finished_at,
        hosts=hosts,
    )
    session.add(report)
    session.flush()
    audit.record(
        session,
        principal,
        "playbooks.report",
        "playbook_report",
        report.id,
        org_id,
        {
            "playbook": report.playbook,
            "status": report.status,
            "bundle_version": report.bundle_version,
            "hosts": len(hosts),
        },
    )
    return report


def list_reports(
    session: Session,
    principal: Principal,
    page: PageRequest,
    organisation_id: uuid.UUID | None,
    *,
    fleet_wide: bool = False,
) -> tuple[list[PlaybookReport], str | None]:
    """One organisation's reports for anyone who sees its servers, or
    (fleet_wide) every organisation's for staff, optionally narrowed."""
    if fleet_wide:
        principal.require_staff(StaffPerm.fleet_read)
    else:
        assert organisation_id is not None
        principal.require(organisation_id, Perm.servers_read)
        if session.get(Organisation, organisation_id) is None:
            raise NotFound("organisation not found")
    statement = select(PlaybookReport)
    if organisation_id is not None:
        statement = statement.where(PlaybookReport.organisation_id == organisation_id)
    rows = session.exec(paginate(statement, PlaybookReport.id, page)).all()
    return finish_page(rows, page, lambda report: report.id)

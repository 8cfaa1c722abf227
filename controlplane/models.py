"""Every table, imported in one place so SQLModel.metadata knows them all
(Alembic's autogenerate and the test fixtures read it)."""

from controlplane.audit.models import AuditEntry
from controlplane.billing.models import (
    AddOn,
    BillingAccount,
    BillingSubscription,
    Invoice,
    Plan,
    StripeEvent,
)
from controlplane.branding.models import ServerBranding
from controlplane.bundles.models import PlaybookReport
from controlplane.fleet.models import Host
from controlplane.identity.models import OrganisationSso, ServerSso
from controlplane.jobs.models import Job, JobEvent, JobStep
from controlplane.moderation.models import (
    Assignment,
    ModerationTeam,
    ModeratorAccess,
    TeamMember,
)
from controlplane.moderation.reports import ModerationFeed, ModerationReport
from controlplane.rollouts.models import (
    CatalogueRelease,
    MaintenanceWindow,
    ReleaseSeries,
    Rollout,
    RolloutTarget,
)
from controlplane.servers.models import Server, ServerEvent, ServerSecrets
from controlplane.storage.models import ServerStorage
from controlplane.tenancy.models import Invitation, Membership, Organisation, User
from controlplane.tokens.models import ApiToken

__all__ = [
    "AddOn",
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "BillingAccount",
    "BillingSubscription",
    "CatalogueRelease",
    "Host",
    "Invitation",
    "Invoice",
    "Job",
    "JobEvent",
    "JobStep",
    "MaintenanceWindow",
    "Membership",
    "ModerationFeed",
    "ModerationReport",
    "ModerationTeam",
    "ModeratorAccess",
    "Organisation",
    "OrganisationSso",
    "Plan",
    "PlaybookReport",
    "ReleaseSeries",
    "Rollout",
    "RolloutTarget",
    "Server",
    "ServerBranding",
    "ServerEvent",
    "ServerSecrets",
    "ServerSso",
    "ServerStorage",
    "StripeEvent",
    "TeamMember",
    "User",
]

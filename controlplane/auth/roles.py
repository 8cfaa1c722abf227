"""Roles and the permissions each one grants.

The tables here are the whole authorisation policy; services ask
`Principal.require(...)` and never compare role names themselves.
"""

from __future__ import annotations

from enum import StrEnum


class OrgRole(StrEnum):
    owner = "owner"
    admin = "admin"
    billing = "billing"
    viewer = "viewer"


class StaffRole(StrEnum):
    operator = "operator"
    admin = "admin"


class Scope(StrEnum):
    read = "read"
    write = "write"
    # Staff powers need this scope on the token as well as a staff role on the
    # user, so an everyday token of a staff member cannot act on the fleet.
    staff = "staff"
    playbooks = "playbooks"


# What a person holds when they act themselves (a first token from accepting
# an invitation, a browser session): everything a member may do, from which
# they mint narrower tokens for automation (for instance playbooks only, for
# an in-house team's CI). Staff add the staff scope.
PERSON_SCOPES = frozenset({Scope.read, Scope.write, Scope.playbooks})


class Perm(StrEnum):
    org_read = "org.read"
    org_update = "org.update"
    members_read = "members.read"
    members_manage = "members.manage"
    owners_manage = "owners.manage"
    servers_read = "servers.read"
    servers_order = "servers.order"
    servers_update = "servers.update"
    servers_cancel = "servers.cancel"
    billing_read = "billing.read"
    billing_manage = "billing.manage"
    audit_read = "audit.read"
    tokens_audit = "tokens.audit"


_VIEWER = frozenset({Perm.org_read, Perm.members_read, Perm.servers_read})
_BILLING = _VIEWER | {Perm.billing_read, Perm.billing_manage}
_ADMIN = _VIEWER | {
    Perm.org_update,
    Perm.members_manage,
    Perm.servers_order,
    Perm.servers_update,
    Perm.servers_cancel,
    Perm.billing_read,
    Perm.audit_read,
    Perm.tokens_audit,
}
_OWNER = _ADMIN | _BILLING | {Perm.owners_manage}

ORG_ROLE_PERMS: dict[OrgRole, frozenset[Perm]] = {
    OrgRole.viewer: _VIEWER,
    OrgRole.billing: frozenset(_BILLING),
    OrgRole.admin: frozenset(_ADMIN),
    OrgRole.owner: frozenset(_OWNER),
}


class StaffPerm(StrEnum):
    fleet_read = "fleet.read"
    servers_suspend = "servers.suspend"
    hosts_manage = "hosts.manage"
    plans_manage = "plans.manage"
    organisations_manage = "organisations.manage"
    # Moderation teams, their members and their assignment to servers.
    moderation_manage = "moderation.manage"


STAFF_ROLE_PERMS: dict[StaffRole, frozenset[StaffPerm]] = {
    StaffRole.operator: frozenset(
        {
            StaffPerm.fleet_read,
            StaffPerm.servers_suspend,
            StaffPerm.hosts_manage,
            StaffPerm.moderation_manage,
        }
    ),
    StaffRole.admin: frozenset(StaffPerm),
}

# Staff act inside an organisation with at most these permissions: they can
# read everything (support needs it) but changing a customer's servers or
# members is the customer's call, except for a staff admin.
STAFF_ORG_PERMS: dict[StaffRole, frozenset[Perm]] = {
    StaffRole.operator: frozenset(
        {
            Perm.org_read,
            Perm.members_read,
            Perm.servers_read,
            Perm.billing_read,
            Perm.audit_read,
            Perm.tokens_audit,
        }
    ),
    StaffRole.admin: frozenset(Perm),
}

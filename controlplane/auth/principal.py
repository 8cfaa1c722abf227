"""The authenticated caller of a request, and the checks services make."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from controlplane.auth.roles import (
    ORG_ROLE_PERMS,
    STAFF_ORG_PERMS,
    STAFF_ROLE_PERMS,
    OrgRole,
    Perm,
    Scope,
    StaffPerm,
    StaffRole,
)
from controlplane.problems import Forbidden, InsufficientScope, NotFound


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    label: str
    token_id: uuid.UUID | None
    scopes: frozenset[Scope]
    memberships: dict[uuid.UUID, OrgRole] = field(default_factory=dict)
    # The staff role in effect: the user's role, and only when the token
    # carries the staff scope.
    staff_role: StaffRole | None = None
    # Set when the token is bound to one organisation.
    bound_organisation_id: uuid.UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.staff_role is not None

    def org_perms(self, organisation_id: uuid.UUID) -> frozenset[Perm]:
        perms: frozenset[Perm] = frozenset()
        role = self.memberships.get(organisation_id)
        if role is not None:
            perms = ORG_ROLE_PERMS[role]
        if self.staff_role is not None:
            perms = perms | STAFF_ORG_PERMS[self.staff_role]
        return perms

    def can_see(self, organisation_id: uuid.UUID) -> bool:
        return self.is_staff or organisation_id in self.memberships

    def require(self, organisation_id: uuid.UUID, perm: Perm, what: str = "organisation") -> None:
        """Refuse with 404 when the organisation is not the caller's at all,
        so another tenant's resources look exactly like missing ones; with
        403 when it is theirs but their role does not allow `perm`."""
        if not self.can_see(organisation_id):
            raise NotFound(f"{what} not found")
        if perm not in self.org_perms(organisation_id):
            raise Forbidden(f"your role does not allow {perm.value}")

    def require_staff(self, perm: StaffPerm) -> None:
        if self.staff_role is None or perm not in STAFF_ROLE_PERMS[self.staff_role]:
            raise Forbidden(f"this needs a staff role that allows {perm.value}")

    def require_scope(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise InsufficientScope(f"this token lacks the '{scope.value}' scope")

    def visible_organisation_ids(self) -> set[uuid.UUID] | None:
        """None means every organisation (staff)."""
        return None if self.is_staff else set(self.memberships)

    def organisations_with(self, perm: Perm) -> set[uuid.UUID] | None:
        if self.staff_role is not None and perm in STAFF_ORG_PERMS[self.staff_role]:
            return None
        return {org for org, role in self.memberships.items() if perm in ORG_ROLE_PERMS[role]}

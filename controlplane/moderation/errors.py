"""Moderation staffing's refusals, as problem+json kinds clients branch on."""

from __future__ import annotations

from controlplane.problems import Conflict


class ModerationNotOrdered(Conflict):
    kind, title = "moderation-not-ordered", "The server has no moderation staffing"


class TeamInUse(Conflict):
    kind, title = "moderation-team-in-use", "The team staffs servers"

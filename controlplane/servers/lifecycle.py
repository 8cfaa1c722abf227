"""The server lifecycle: states, the events that move between them, and who
may cause each event.

    requested ─submit_for_payment→ awaiting_payment ─paid→ provisioning
    requested ─approve──────────────────────────────────→ provisioning
    provisioning ─provisioned→ active ⇄ upgrading (upgrade / upgraded)
    active ⇄ suspended (suspend / resume)
    provisioning, upgrading ─fail→ failed ─retry→ provisioning
    requested, awaiting_payment ─cancel→ deleted       (nothing to tear down)
    active, suspended, failed ─cancel→ deprovisioning ─deprovisioned→ deleted

Anything not in the table is refused with a 409 and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ServerState(StrEnum):
    requested = "requested"
    awaiting_payment = "awaiting_payment"
    provisioning = "provisioning"
    active = "active"
    upgrading = "upgrading"
    suspended = "suspended"
    failed = "failed"
    deprovisioning = "deprovisioning"
    deleted = "deleted"


class Actor(StrEnum):
    """Who may cause an event: the customer, hosting staff, or Herd itself
    (workers, billing webhooks)."""

    customer = "customer"
    staff = "staff"
    system = "system"


@dataclass(frozen=True)
class Transition:
    event: str
    sources: frozenset[ServerState]
    target: ServerState
    actors: frozenset[Actor]


S = ServerState
_SYSTEM = frozenset({Actor.system})
_STAFF = frozenset({Actor.staff, Actor.system})
_ANYONE = frozenset(Actor)

TRANSITIONS: tuple[Transition, ...] = (
    Transition("submit_for_payment", frozenset({S.requested}), S.awaiting_payment, _SYSTEM),
    Transition("approve", frozenset({S.requested}), S.provisioning, _STAFF),
    Transition("paid", frozenset({S.awaiting_payment}), S.provisioning, _SYSTEM),
    Transition("provisioned", frozenset({S.provisioning}), S.active, _SYSTEM),
    Transition("upgrade", frozenset({S.active}), S.upgrading, _SYSTEM),
    Transition("upgraded", frozenset({S.upgrading}), S.active, _SYSTEM),
    # Back on the release it ran before: rolled back after a failed upgrade,
    # or the upgrade stopped before it changed anything on the host.
    Transition("rolled_back", frozenset({S.upgrading}), S.active, _SYSTEM),
    Transition("upgrade_cancelled", frozenset({S.upgrading}), S.active, _SYSTEM),
    Transition("fail", frozenset({S.provisioning, S.upgrading}), S.failed, _SYSTEM),
    Transition("retry", frozenset({S.failed}), S.provisioning, _STAFF),
    Transition("suspend", frozenset({S.active}), S.suspended, _STAFF),
    Transition("resume", frozenset({S.suspended}), S.active, _STAFF),
    Transition("cancel", frozenset({S.requested, S.awaiting_payment}), S.deleted, _ANYONE),
    Transition(
        "decommission", frozenset({S.active, S.suspended, S.failed}), S.deprovisioning, _ANYONE
    ),
    Transition("deprovisioned", frozenset({S.deprovisioning}), S.deleted, _SYSTEM),
)

_BY_EVENT: dict[str, Transition] = {t.event: t for t in TRANSITIONS}

# States in which the customer's settings may still change.
EDITABLE_STATES = frozenset(
    {S.requested, S.awaiting_payment, S.provisioning, S.active, S.upgrading, S.suspended, S.failed}
)


class TransitionRefused(Exception):
    def __init__(self, event: str, state: ServerState, reason: str) -> None:
        super().__init__(reason)
        self.event = event
        self.state = state
        self.reason = reason


def transition_for(event: str) -> Transition:
    try:
        return _BY_EVENT[event]
    except KeyError:
        raise ValueError(f"unknown lifecycle event {event!r}") from None


def target_state(event: str, current: ServerState, actor: Actor) -> ServerState:
    """The state `event` leads to from `current`, or TransitionRefused."""
    transition = transition_for(event)
    if actor not in transition.actors:
        raise TransitionRefused(event, current, f"'{event}' is not available to {actor.value}")
    if current not in transition.sources:
        allowed = ", ".join(sorted(s.value for s in transition.sources))
        raise TransitionRefused(
            event, current, f"cannot {event} a server that is {current.value} (only from {allowed})"
        )
    return transition.target


def cancel_event(current: ServerState) -> str:
    """Cancelling means 'deleted' before anything exists on a host, and a
    teardown afterwards; the caller should not have to know which."""
    return "cancel" if current in {S.requested, S.awaiting_payment} else "decommission"

from __future__ import annotations

import pytest

from controlplane.servers.lifecycle import (
    TRANSITIONS,
    Actor,
    ServerState,
    TransitionRefused,
    cancel_event,
    target_state,
)

S = ServerState
# The lifecycle as the product promises it, written out independently of the
# table in the code: (event, from) -> to.
EXPECTED = {
    ("submit_for_payment", S.requested): S.awaiting_payment,
    ("approve", S.requested): S.provisioning,
    ("paid", S.awaiting_payment): S.provisioning,
    ("provisioned", S.provisioning): S.active,
    ("upgrade", S.active): S.upgrading,
    ("upgraded", S.upgrading): S.active,
    ("rolled_back", S.upgrading): S.active,
    ("upgrade_cancelled", S.upgrading): S.active,
    ("fail", S.provisioning): S.failed,
    ("fail", S.upgrading): S.failed,
    ("retry", S.failed): S.provisioning,
    ("suspend", S.active): S.suspended,
    ("resume", S.suspended): S.active,
    ("cancel", S.requested): S.deleted,
    ("cancel", S.awaiting_payment): S.deleted,
    ("decommission", S.active): S.deprovisioning,
    ("decommission", S.suspended): S.deprovisioning,
    ("decommission", S.failed): S.deprovisioning,
    ("deprovisioned", S.deprovisioning): S.deleted,
}
EVENTS = sorted({t.event for t in TRANSITIONS})


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("state", list(ServerState))
def test_every_event_from_every_state(event: str, state: ServerState) -> None:
    expected = EXPECTED.get((event, state))
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            target_state(event, state, Actor.system)
        assert state.value in refused.value.reason
    else:
        assert target_state(event, state, Actor.system) == expected


def test_deleted_is_final() -> None:
    for event in EVENTS:
        with pytest.raises(TransitionRefused):
            target_state(event, S.deleted, Actor.system)


@pytest.mark.parametrize(
    "event",
    [
        "paid",
        "provisioned",
        "upgraded",
        "rolled_back",
        "upgrade_cancelled",
        "fail",
        "deprovisioned",
    ],
)
def test_customers_and_staff_cannot_fake_system_events(event: str) -> None:
    source = next(state for (e, state) in EXPECTED if e == event)
    for actor in (Actor.customer, Actor.staff):
        with pytest.raises(TransitionRefused, match="not available"):
            target_state(event, source, actor)


def test_customers_cannot_suspend_or_resume() -> None:
    with pytest.raises(TransitionRefused):
        target_state("suspend", S.active, Actor.customer)
    with pytest.raises(TransitionRefused):
        target_state("resume", S.suspended, Actor.customer)


def test_cancel_before_provisioning_deletes_and_after_tears_down() -> None:
    assert cancel_event(S.requested) == "cancel"
    assert cancel_event(S.awaiting_payment) == "cancel"
    assert cancel_event(S.active) == "decommission"


def test_unknown_event_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown lifecycle event"):
        target_state("explode", S.active, Actor.system)

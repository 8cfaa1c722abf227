"""A provisioned test host for the moderation tests (tests/provisioning's
`placed` fixture: one host and one server placed on it)."""

from tests.provisioning.conftest import placed

__all__ = ["placed"]

"""The refusals particular to bundles (problem+json types clients branch on)."""

from __future__ import annotations

from controlplane.problems import Forbidden


class NoSupportContract(Forbidden):
    kind, title = "no-support-contract", "No support contract"

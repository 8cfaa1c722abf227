"""The `brand` job: one run of playbooks/brand.yml with the server's
variables, which include its branding (provisioning/variables.py)."""

from __future__ import annotations

from controlplane.branding.service import BRAND_JOB
from provisioning.pipeline import Pipeline
from provisioning.steps.provision import playbook_step

BRAND = Pipeline(BRAND_JOB, (playbook_step("brand.yml"),))

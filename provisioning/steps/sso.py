"""The single sign-on jobs: bring a server to its organisation's SSO choice
(`sso`), and rotate its client secret (`sso_rotate`)."""

from __future__ import annotations

from controlplane.identity.service import ROTATE_JOB, SSO_JOB
from provisioning.pipeline import Pipeline
from provisioning.steps.identity import (
    PREPARE_IDENTITY,
    RETIRE_IDENTITY,
    ROTATE_SECRET,
)
from provisioning.steps.provision import playbook_step

SSO = Pipeline(SSO_JOB, (PREPARE_IDENTITY, playbook_step("sso.yml"), RETIRE_IDENTITY))
# Rotation is its own step, checkpointed before the deploy: a resumed job
# deploys the secret Keycloak made instead of making another.
SSO_ROTATE = Pipeline(
    ROTATE_JOB, (ROTATE_SECRET, PREPARE_IDENTITY, playbook_step("sso.yml"), RETIRE_IDENTITY)
)

"""Which pipeline runs which kind of job, and what each job must not leak."""

from __future__ import annotations

from functools import cache

from sqlmodel import Session

from controlplane.jobs.models import Job
from provisioning.pipeline import Pipeline
from provisioning.redaction import Redactor


@cache
def pipelines() -> dict[str, Pipeline]:
    # Imported here so the Celery app can load without the step modules'
    # heavier imports (boto3, python-keycloak) until a job needs them.
    from controlplane.branding.pipeline import BRAND
    from provisioning.steps.backups import BACKUPS
    from provisioning.steps.billing import DEPROVISION, FINAL_BACKUP, RESUME, SUSPEND
    from provisioning.steps.hosts import CREATE_HOST
    from provisioning.steps.inspect import INSPECT
    from provisioning.steps.moderation import MODERATORS
    from provisioning.steps.provision import PROVISION
    from provisioning.steps.sso import SSO, SSO_ROTATE
    from provisioning.steps.storage import PURGE_STORAGE
    from provisioning.steps.upgrade import UPGRADE

    return {
        p.kind: p
        for p in (
            PROVISION,
            CREATE_HOST,
            INSPECT,
            UPGRADE,
            SUSPEND,
            RESUME,
            FINAL_BACKUP,
            DEPROVISION,
            SSO,
            SSO_ROTATE,
            PURGE_STORAGE,
            BRAND,
            BACKUPS,
            MODERATORS,
        )
    }


def redactor_for(session: Session, job: Job) -> Redactor:
    """Every secret of the job's server, so none survives into an event."""
    if job.server_id is None:
        return Redactor()
    from controlplane.identity.service import sso_secrets
    from controlplane.moderation.sync import moderator_secrets
    from controlplane.servers import secrets
    from controlplane.storage import grant_secrets

    return Redactor(
        [
            *secrets.values(session, job.server_id),
            *grant_secrets(session, job.server_id),
            *sso_secrets(session, job.server_id),
            *moderator_secrets(session, job.server_id),
        ]
    )

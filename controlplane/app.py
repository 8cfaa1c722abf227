"""The FastAPI application: API, operations endpoints and (later) the web
pages, assembled from each domain's router."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from controlplane.audit.routes import router as audit_router
from controlplane.backups.routes import router as backups_router
from controlplane.billing.billing_routes import router as billing_router
from controlplane.billing.routes import router as plans_router
from controlplane.branding.routes import router as branding_router
from controlplane.bundles.routes import router as playbooks_router
from controlplane.deployments.routes import router as deployments_router
from controlplane.fleet.routes import router as hosts_router
from controlplane.identity.routes import router as sso_router
from controlplane.jobs.routes import router as jobs_router
from controlplane.middleware import (
    BodyLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    SignedWebhookMiddleware,
)
from controlplane.moderation.queue import WEBHOOK_PATH_PREFIX
from controlplane.moderation.queue_routes import router as moderation_queue_router
from controlplane.moderation.routes import router as moderation_router
from controlplane.ops.health import router as health_router
from controlplane.ops.metrics import register_collectors
from controlplane.ops.metrics import router as metrics_router
from controlplane.problems import document_problems, install_problem_handlers
from controlplane.rollouts.routes import router as rollouts_router
from controlplane.servers.routes import router as servers_router
from controlplane.settings import get_settings
from controlplane.tenancy.routes import router as tenancy_router
from controlplane.tokens.routes import router as tokens_router
from web.router import install_web


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(
        title="Herd",
        version="0.1.0",
        summary="Control plane for hosting providers that run Mastodon for organisations.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    # Each router carries the /api/v1 prefix itself, so a route's own path is
    # its full template (metrics label requests with it).
    for router in (
        tenancy_router,
        servers_router,
        deployments_router,
        sso_router,
        branding_router,
        backups_router,
        tokens_router,
        plans_router,
        billing_router,
        hosts_router,
        audit_router,
        jobs_router,
        moderation_router,
        rollouts_router,
        playbooks_router,
        moderation_queue_router,
        health_router,
        metrics_router,
    ):
        app.include_router(router)
    # The portal and staff console: pages on the same services, and /static.
    install_web(app)
    install_problem_handlers(app)
    document_problems(app)
    # Starlette runs the last added middleware first: the request context
    # wraps everything, so even a refused oversize body gets an id and a metric.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        SignedWebhookMiddleware,
        signed={
            "/api/v1/billing/stripe/webhook": b"stripe-signature",
            WEBHOOK_PATH_PREFIX: b"x-hub-signature",
        },
        max_bytes=settings.webhook_max_body_bytes,
    )
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware)
    register_collectors()
    return app

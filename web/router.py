"""Mounts the portal, the console and their static files on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from web.routes import (
    backups,
    billing,
    branding,
    live,
    people,
    rollouts,
    servers,
    signin,
    staff,
    staff_hosts,
    staff_moderation,
)

STATIC = Path(__file__).parent / "static"


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for module in (
        signin,
        servers,
        backups,
        branding,
        billing,
        live,
        people,
        staff,
        staff_hosts,
        staff_moderation,
        rollouts,
    ):
        router.include_router(module.router)
    return router


def install_web(app: FastAPI) -> None:
    app.include_router(build_router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

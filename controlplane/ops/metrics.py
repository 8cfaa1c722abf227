"""Prometheus metrics: request rate, latency and SQL statements per request,
and the fleet's servers by state.

With several API processes, set PROMETHEUS_MULTIPROC_DIR so the client
library aggregates across them (see the README).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from controlplane.db import get_engine

router = APIRouter(tags=["operations"])

REQUESTS = Counter(
    "herd_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "herd_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STATEMENTS = Histogram(
    "herd_http_request_db_statements",
    "SQL statements run to answer one HTTP request",
    ["method", "route"],
    buckets=(0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50, 100),
)


class FleetCollector(Collector):
    """Counts servers by state at scrape time: one GROUP BY, never a row scan
    in Python."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # Imported here: the models import this package's siblings.
        from controlplane.servers.models import Server

        gauge = GaugeMetricFamily("herd_servers", "Servers by lifecycle state", labels=["state"])
        try:
            with Session(get_engine()) as session:
                rows = session.exec(select(Server.state, func.count()).group_by(Server.state)).all()
        except SQLAlchemyError:  # a scrape must not fail because the database is down
            rows = []
        for state, count in rows:
            gauge.add_metric([str(state)], count)
        yield gauge


_collector_registered = False


def register_collectors() -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(FleetCollector())
        _collector_registered = True


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

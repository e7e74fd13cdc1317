"""Request metrics for Rapport's HTTP services (the collector and the read API).

An ASGI middleware: each request is counted by method, route template (never the raw path,
which holds customer identifiers and would make a series per customer) and status, and its
time observed. GET /metrics serves the service's registry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from observability.exposition import CONTENT_TYPE, scrape

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # no route: a 404 for a path nobody serves


class HttpMetrics:
    """`service` names the series: rapport_<service>_requests_total and
    rapport_<service>_request_seconds."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)  # start time, CPU, memory, open files
        self.requests = Counter(
            f"rapport_{service}_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"rapport_{service}_request_seconds",
            "Time from a request's arrival to the end of its answer, by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def install(self, app: FastAPI) -> None:
        """Count every request of `app` and serve GET /metrics (not in the OpenAPI)."""
        app.add_middleware(_Measured, metrics=self)

        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Response:
            return Response(scrape(self.registry), media_type=CONTENT_TYPE)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class _Measured:
    def __init__(self, app: Asgi, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # an exception nobody turned into an answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - began)

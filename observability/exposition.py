"""The text a Prometheus server scrapes from GET /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CONTENT_TYPE", "METRICS_MEDIA_TYPE", "scrape"]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # text/plain; version=0.0.4; charset=utf-8
# The same without its charset, for aiohttp (faust's web server), which adds it itself.
METRICS_MEDIA_TYPE = "; ".join(
    part.strip() for part in CONTENT_TYPE.split(";") if not part.strip().startswith("charset")
)


def scrape(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

"""The HTTP layer of the collector: routes, authentication, limits, status codes.

Everything below this module raises CollectorError subclasses; `_STATUS` is the one place
they become HTTP status codes. Responses carry `code` and `message` (what Segment's client
libraries read) and, for invalid events, `problems` with path, value and rule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, ORJSONResponse

from collector.errors import (
    CollectorError,
    InvalidEvents,
    MalformedRequest,
    Problem,
    RateLimited,
    RequestTooLarge,
    Unauthenticated,
    Unavailable,
)
from collector.ingest import Ingestor
from collector.metrics import CollectorMetrics
from collector.provenance import DEFAULT_MAX_FUTURE_SKEW, Provenance
from collector.rapport_events import parse_events
from collector.ratelimit import RateLimiter, retry_after_seconds
from collector.segment import SegmentTranslator, TrackMapping
from collector.sources import CachedKeys, SourceRecord
from schemas import Envelope

_STATUS: dict[type[CollectorError], tuple[int, str]] = {
    MalformedRequest: (400, "malformed_request"),
    Unauthenticated: (401, "unauthorized"),
    RequestTooLarge: (413, "too_large"),
    InvalidEvents: (422, "invalid_events"),
    RateLimited: (429, "rate_limited"),
    Unavailable: (503, "unavailable"),
}


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int
    max_batch_events: int
    default_rate: float  # events/s per source without a rate of its own
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW  # occurred_at ahead of arrival, at most


@dataclass
class CollectorDeps:
    """What the app is composed of (built by infra.bootstrap.collector_app)."""

    keys: CachedKeys
    ingestor: Ingestor
    mapping: TrackMapping
    limits: RequestLimits
    limiter: RateLimiter = field(default_factory=RateLimiter)
    # name → probe that returns True when that dependency answers (blocking; run in a thread)
    readiness: dict[str, Callable[[], bool]] = field(default_factory=dict)
    metrics: CollectorMetrics = field(default_factory=CollectorMetrics)
    on_shutdown: Callable[[], None] = lambda: None


_SEGMENT_BODY = {
    "type": "object",
    "description": "A message of Segment's spec (https://segment.com/docs/connections/spec/).",
    "properties": {
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "event": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}
_AUTH_DOC = (
    "Authenticate with the source's write key as HTTP Basic username (as Segment clients "
    "do) or as a bearer token. 200 means Kafka acknowledged every event of the request."
)


async def _source(request: Request) -> SourceRecord:
    deps: CollectorDeps = request.app.state.deps
    key = _write_key(request.headers.get("authorization"))
    found = deps.keys.cached(key) or await asyncio.to_thread(deps.keys.source_for, key)
    if found is None:
        raise Unauthenticated("unknown or revoked write key")
    return found


Authenticated = Annotated[SourceRecord, Depends(_source)]


def create_app(deps: CollectorDeps) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(deps.on_shutdown)

    app = FastAPI(
        title="Rapport collector",
        description="Touchpoints from web systems, in Rapport's schema or Segment's spec.",
        version="1",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.deps = deps
    deps.metrics.install(app)

    @app.exception_handler(CollectorError)
    async def _error(_: Request, exc: Exception) -> JSONResponse:
        status, code = next(
            (v for cls, v in _STATUS.items() if isinstance(exc, cls)), (500, "error")
        )
        body: dict[str, Any] = {"code": code, "message": str(exc)}
        headers = {}
        if isinstance(exc, InvalidEvents):
            body["problems"] = [
                {"path": p.path, "value": _jsonable(p.value), "rule": p.rule}
                for p in exc.problems[:100]
            ]
        if isinstance(exc, RateLimited | Unavailable):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = 'Basic realm="rapport"'
        return ORJSONResponse(body, status_code=status, headers=headers)

    async def admit(src: SourceRecord, count: int) -> None:
        if count > deps.limits.max_batch_events:
            raise RequestTooLarge(
                f"{count} events in one request; the limit is {deps.limits.max_batch_events}"
            )
        rate = src.rate_limit or deps.limits.default_rate
        wait = deps.limiter.try_acquire(src.name, count, rate)
        if wait:
            raise RateLimited(
                f"source {src.name!r} is over its limit of {rate:g} events/s",
                retry_after_seconds(wait),
            )

    @app.post(
        "/v1/events",
        summary="Events in Rapport's schema: one (an object) or a batch (an array)",
        description=_AUTH_DOC,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {}}}},
    )
    async def post_events(request: Request, src: Authenticated) -> dict[str, Any]:
        received_at = datetime.now(UTC)
        body = await _json(request, deps.limits.max_body_bytes)
        await admit(src, len(body) if isinstance(body, list) else 1)
        problems: list[Problem] = []
        provenance = Provenance(src.name, received_at, deps.limits.max_future_skew)
        events = parse_events(body, problems, provenance)
        return await _accept(deps, events, problems)

    def segment_route(kind: str) -> None:
        async def post_message(request: Request, src: Authenticated) -> dict[str, Any]:
            received_at = datetime.now(UTC)
            body = await _json(request, deps.limits.max_body_bytes)
            translator = SegmentTranslator(
                src.name, received_at, deps.mapping, deps.limits.max_future_skew
            )
            if kind == "batch":
                count = (
                    len(body["batch"])
                    if isinstance(body, dict) and isinstance(body.get("batch"), list)
                    else 1
                )
                await admit(src, count)
                events = translator.batch(body)
            else:
                await admit(src, 1)
                events = translator.message(body, kind=kind)
            return await _accept(deps, events, translator.problems)

        schema = (
            {"type": "object", "properties": {"batch": {"type": "array", "items": _SEGMENT_BODY}}}
            if kind == "batch"
            else _SEGMENT_BODY
        )
        app.post(
            f"/v1/{kind}",
            summary=f"Segment-compatible {kind}",
            description=_AUTH_DOC,
            tags=["segment"],
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            },
        )(post_message)

    for kind in ("track", "identify", "page", "screen", "group", "alias", "batch"):
        segment_route(kind)

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka and PostgreSQL answer")
    async def readyz() -> ORJSONResponse:
        names = list(deps.readiness)
        answers = await asyncio.gather(*(asyncio.to_thread(deps.readiness[name]) for name in names))
        checks = {
            name: "ok" if ok else "unreachable" for name, ok in zip(names, answers, strict=True)
        }
        ready = all(answers)
        return ORJSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    return app


async def _accept(
    deps: CollectorDeps, events: list[Envelope], problems: list[Problem]
) -> dict[str, Any]:
    if problems:
        raise InvalidEvents(problems)
    accepted = await deps.ingestor.ingest(events)
    return {"success": True, "accepted": accepted}


def _write_key(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing write key: send it as HTTP Basic username or Bearer token")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        try:
            username = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            username = ""
        if username:
            return username
    raise Unauthenticated("the Authorization header must be Basic <writeKey:> or Bearer <key>")


async def _json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"body of {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        data = _gunzip(data, limit)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"malformed JSON: {exc}") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise MalformedRequest(f"Content-Encoding is gzip but the body is not: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestTooLarge(f"body over {limit} bytes once decompressed")
    return out


def _jsonable(value: object) -> object:
    try:
        orjson.dumps(value)
        return value
    except TypeError:
        return repr(value)

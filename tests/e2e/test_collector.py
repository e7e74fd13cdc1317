"""The HTTP collector as a web system drives it: real HTTP, real Kafka, real PostgreSQL."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from infra.settings import Settings
from producers.simulator import simulate
from schemas import encode_event
from tests.support import consume, rapport, running_collector, wait_for

pytestmark = pytest.mark.integration


def _add_source(settings: Settings, name: str, *options: str) -> str:
    result = rapport(settings, "sources", "add", name, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def collector(rapport_settings: Settings) -> Iterator[tuple[str, str]]:
    """(base URL, write key) of a running collector with small limits."""
    key = _add_source(rapport_settings, "webshop")
    with running_collector(
        rapport_settings,
        RAPPORT_COLLECTOR_MAX_BODY_BYTES="200000",
        RAPPORT_COLLECTOR_MAX_BATCH_EVENTS="50",
        RAPPORT_COLLECTOR_MAX_EVENT_BYTES="4000",
        RAPPORT_COLLECTOR_KEY_CACHE_S="0.2",
        RAPPORT_COLLECTOR_MAX_FUTURE_SKEW_S="120",
    ) as base:
        yield base, key


def _events(n: int, seed: int = 5) -> list[dict]:
    """Simulated events as the client of a write key posts them: without a source system
    (the key names it) and without received_at (Rapport stamps it)."""
    stream = simulate(20, seed=seed)
    events = [orjson.loads(encode_event(next(stream))) for _ in range(n)]
    for event in events:
        del event["source"]["system"]
    return events


def test_rapport_events_one_and_a_batch_arrive_in_kafka(
    rapport_settings: Settings, collector: tuple[str, str]
) -> None:
    base, key = collector
    one, *batch = _events(4)
    batch[0]["source"]["system"] = "webshop"  # stating the key's own source is fine
    channels = {e["event_id"]: e["source"]["channel"] for e in [one, *batch]}
    del batch[1]["source"]  # no source at all: the type's channel
    auth = httpx.BasicAuth(key, "")
    before = datetime.now(UTC)
    assert httpx.post(f"{base}/v1/events", json=one, auth=auth).json() == {
        "success": True,
        "accepted": 1,
    }
    response = httpx.post(
        f"{base}/v1/events", json=batch, headers={"Authorization": f"Bearer {key}"}
    )
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    records = consume(rapport_settings, 4)
    assert {r["event_id"] for _, r in records} == {e["event_id"] for e in [one, *batch]}
    for _, record in records:
        # The write key's source, the channel as sent, and the time Rapport received it.
        assert record["source"] == {"system": "webshop", "channel": channels[record["event_id"]]}
        assert before <= datetime.fromisoformat(record["received_at"]) <= after


def test_segment_track_identify_page_and_batch(
    rapport_settings: Settings, collector: tuple[str, str]
) -> None:
    base, key = collector
    auth = httpx.BasicAuth(key, "")
    track = {
        "userId": "u-42",
        "event": "Order Completed",
        "messageId": "not-a-uuid-1",
        "timestamp": "2026-03-01T10:00:00Z",
        "sentAt": "2026-03-01T10:00:30Z",  # the device clock runs 30 s after its own events
        "properties": {
            "order_id": "o-9",
            "total": 30,
            "currency": "EUR",
            "coupon": "SPRING",
            "products": [{"product_id": "p-1", "price": 15, "quantity": 2}],
        },
        "context": {"ip": "10.0.0.1"},
        "receivedAt": "2020-01-01T00:00:00Z",  # Segment sets its own: ignored here too
    }
    before = datetime.now(UTC)
    assert httpx.post(f"{base}/v1/track", json=track, auth=auth).status_code == 200
    after = datetime.now(UTC)
    identify = {"userId": "u-42", "anonymousId": "a-7", "traits": {"plan": "gold"}}
    assert httpx.post(f"{base}/v1/identify", json=identify, auth=auth).status_code == 200
    page = {"anonymousId": "a-7", "name": "Pricing", "context": {"page": {"url": "https://x/p"}}}
    assert httpx.post(f"{base}/v1/page", json=page, auth=auth).status_code == 200
    batch = {"batch": [{"type": "track", "userId": "u-1", "event": "Wishlist Shared"}]}
    assert httpx.post(f"{base}/v1/batch", json=batch, auth=auth).status_code == 200

    records = {r["type"]: (k, r) for k, r in consume(rapport_settings, 5)}
    assert set(records) == {
        "commerce.purchased",
        "profile.updated",
        "identity.linked",
        "web.page_viewed",
        "custom.event",
    }
    key_bytes, purchase = records["commerce.purchased"]
    assert key_bytes == b"u-42"
    assert purchase["event_id"] == str(uuid.uuid5(_segment_namespace(), "webshop/not-a-uuid-1"))
    assert purchase["payload"]["items"] == [{"sku": "p-1", "quantity": 2, "unit_price": "15"}]
    assert purchase["context"] == {"ip": "10.0.0.1", "properties": {"coupon": "SPRING"}}
    skew = _ts(purchase["received_at"]) - _ts(purchase["occurred_at"])
    assert abs(skew - 30) < 0.01  # occurred_at = receivedAt - (sentAt - timestamp)
    assert before <= datetime.fromisoformat(purchase["received_at"]) <= after
    assert all(r["source"]["system"] == "webshop" for _, r in records.values())
    assert records["identity.linked"][1]["payload"]["identifier"] == "anon:a-7"
    assert records["profile.updated"][1]["customer"]["anonymous_id"] == "a-7"
    assert records["web.page_viewed"][1]["payload"]["url"] == "https://x/p"
    assert records["custom.event"][1]["payload"]["name"] == "Wishlist Shared"


def test_each_error_code_says_what_is_wrong(
    rapport_settings: Settings, collector: tuple[str, str]
) -> None:
    base, key = collector
    auth = httpx.BasicAuth(key, "")
    post = httpx.Client(base_url=base, auth=auth).post

    bad_json = post(
        "/v1/track", content=b'{"userId": ', headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.json()["message"]

    assert httpx.post(f"{base}/v1/track", json={}).status_code == 401
    unknown = httpx.post(f"{base}/v1/track", json={}, auth=httpx.BasicAuth("rk_nope", ""))
    assert unknown.status_code == 401 and unknown.json()["code"] == "unauthorized"

    too_big = post("/v1/batch", content=b" " * 200_001)
    assert too_big.status_code == 413 and "limit is 200000" in too_big.json()["message"]
    bomb = post(
        "/v1/batch", content=gzip.compress(b" " * 300_000), headers={"Content-Encoding": "gzip"}
    )
    assert bomb.status_code == 413 and "decompressed" in bomb.json()["message"]
    many = {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 51}
    assert post("/v1/batch", json=many).status_code == 413
    # Each value within the contract's 2000-character limit, the whole event over 4000 bytes.
    huge = {"userId": "u", "event": "e", "properties": {f"p{i}": "x" * 1900 for i in range(3)}}
    large = post("/v1/track", json=huge)
    assert large.status_code == 413 and "the limit is 4000" in large.json()["message"]

    invalid = post(
        "/v1/track", json={"userId": "u", "event": "Order Completed", "properties": {"total": -3}}
    )
    assert invalid.status_code == 422
    problems = {p["path"]: p for p in invalid.json()["problems"]}
    assert problems["properties.total"]["value"] == -3
    assert "greater than or equal to 0" in problems["properties.total"]["rule"]
    assert "properties.order_id" in problems
    rapport_event = _events(1)[0]
    rapport_event["payload"] = {"nonsense": True}
    assert post("/v1/events", json=[rapport_event]).status_code == 422

    assert consume_nothing(rapport_settings)


def test_the_body_cannot_name_another_source_its_arrival_or_the_far_future(
    rapport_settings: Settings, collector: tuple[str, str]
) -> None:
    base, key = collector
    post = httpx.Client(base_url=base, auth=httpx.BasicAuth(key, "")).post
    good, spoofed, stamped, ahead, within = _events(5, seed=7)
    spoofed["source"]["system"] = "shopify"
    stamped["received_at"] = "2026-01-01T00:00:00Z"
    in_a_month = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    ahead["occurred_at"] = in_a_month
    # Under the default skew (5m) this would pass; this collector allows 120 s.
    within["occurred_at"] = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()

    response = post("/v1/events", json=[good, spoofed, stamped, ahead, within])
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_events"
    problems = {p["path"]: p for p in response.json()["problems"]}
    assert set(problems) == {
        "[1].source.system",
        "[2].received_at",
        "[3].occurred_at",
        "[4].occurred_at",
    }
    assert problems["[1].source.system"] == {
        "path": "[1].source.system",
        "value": "shopify",
        "rule": "source.system 'shopify' is not this write key's source 'webshop'; "
        "the system is taken from the write key",
    }
    assert problems["[2].received_at"]["rule"] == (
        "received_at is set by Rapport when it accepts the event; do not send it"
    )
    assert problems["[3].occurred_at"]["value"] == in_a_month
    assert problems["[3].occurred_at"]["rule"].endswith(
        "in the future; at most 2m of clock skew is accepted (RAPPORT_COLLECTOR_MAX_FUTURE_SKEW_S)"
    )
    assert " is 30d 23h in the future" in problems["[3].occurred_at"]["rule"]
    assert "[1].source.system" in response.json()["message"]

    track = {"type": "track", "userId": "u", "event": "Tick", "timestamp": in_a_month}
    segment = post(
        "/v1/batch", json={"batch": [{"type": "track", "userId": "u", "event": "Tick"}, track]}
    )
    assert segment.status_code == 422
    [problem] = [p for p in segment.json()["problems"] if p["path"] == "batch[1].timestamp"]
    assert problem["value"] == in_a_month and "in the future" in problem["rule"]

    assert consume_nothing(rapport_settings)  # a refused request publishes none of its events
    accepted = post("/v1/events", json=[good])
    assert accepted.status_code == 200, accepted.text
    [(_, record)] = consume(rapport_settings, 1)
    assert record["event_id"] == good["event_id"] and record["source"]["system"] == "webshop"


def consume_nothing(settings: Settings) -> bool:
    from tests.support import topic_size

    return topic_size(settings) == 0


def test_revoked_key_is_refused_and_rate_limit_gives_429(
    rapport_settings: Settings, collector: tuple[str, str]
) -> None:
    base, key = collector
    slow = _add_source(rapport_settings, "slow", "--rate-limit", "2")
    message = {"userId": "u", "event": "Tick"}
    first = httpx.post(f"{base}/v1/track", json=message, auth=httpx.BasicAuth(slow, ""))
    assert first.status_code == 200
    batch = {"batch": [{"type": "track", "userId": "u", "event": "Tick"}] * 5}
    statuses = [
        httpx.post(f"{base}/v1/batch", json=batch, auth=httpx.BasicAuth(slow, "")) for _ in range(2)
    ]
    limited = statuses[-1]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1

    assert rapport(rapport_settings, "sources", "revoke", "webshop").returncode == 0
    wait_for(
        lambda: (
            httpx.post(f"{base}/v1/track", json=message, auth=httpx.BasicAuth(key, "")).status_code
            == 401
        ),
        timeout=10,
        what="the revoked key to be refused",
    )
    listing = rapport(rapport_settings, "sources", "list").stdout
    assert "webshop" in listing and "slow" in listing and key not in listing


def test_unreachable_kafka_gives_503_with_retry_after(rapport_settings: Settings) -> None:
    key = _add_source(rapport_settings, "webshop")
    with running_collector(
        rapport_settings,
        RAPPORT_KAFKA_BOOTSTRAP="127.0.0.1:1",
        RAPPORT_COLLECTOR_KAFKA_MAX_BLOCK_MS="500",
        RAPPORT_COLLECTOR_ACK_TIMEOUT_S="2",
    ) as base:
        response = httpx.post(
            f"{base}/v1/track",
            json={"userId": "u", "event": "e"},
            auth=httpx.BasicAuth(key, ""),
            timeout=30,
        )
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        ready = httpx.get(f"{base}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"kafka": "unreachable", "database": "ok"}


def test_health_readiness_and_docs(collector: tuple[str, str]) -> None:
    base, _ = collector
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz", timeout=30).json()["status"] == "ready"
    assert httpx.get(f"{base}/docs").status_code == 200
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/track", "/v1/identify", "/v1/page", "/v1/batch"} <= set(paths)


def _segment_namespace() -> uuid.UUID:
    from collector.segment import SEGMENT_NAMESPACE

    return SEGMENT_NAMESPACE


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_metrics_count_requests_by_route_and_status_and_time_kafka_acks(
    collector: tuple[str, str],
) -> None:
    from tests.support import scrape

    base, key = collector
    auth = httpx.BasicAuth(key, "")
    assert httpx.post(f"{base}/v1/events", json=_events(5), auth=auth).status_code == 200
    assert httpx.post(f"{base}/v1/events", json=_events(1), auth=auth).status_code == 200
    assert httpx.post(f"{base}/v1/events", json=_events(1)).status_code == 401
    metrics = scrape(f"{base}/metrics")
    requests = "rapport_collector_requests_total"
    assert metrics[(requests, ("POST", "/v1/events", "200"))] == 2
    assert metrics[(requests, ("POST", "/v1/events", "401"))] == 1
    assert metrics[("rapport_collector_events_accepted_total", ())] == 6
    # One acknowledgement time per request whose events Kafka stored (not the refused one).
    assert metrics[("rapport_collector_kafka_ack_seconds_count", ())] == 2
    assert 0 < metrics[("rapport_collector_kafka_ack_seconds_sum", ())] < 30
    assert metrics[("rapport_collector_request_seconds_count", ("POST", "/v1/events"))] == 3
    # A path nobody serves is one series, whatever the path.
    httpx.get(f"{base}/nothing-here/123")
    assert scrape(f"{base}/metrics")[(requests, ("GET", "unmatched", "404"))] == 1

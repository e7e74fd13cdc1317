"""The pure parts of access control: masking for analysts, the SQL pseudonym's key, the
embedded server's pg_hba."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

from infra.bootstrap import pseudonym_secret, pseudonymizer
from infra.postgres import PG_HBA
from infra.settings import Settings
from projections.postgres.roles import hmac_pads, personal_fields_by_type
from readapi import masking
from schemas.privacy import MASK


def fake_pseudonym(identifier: str) -> str:
    return f"P({identifier})"


def test_keys_are_masked_only_when_they_name_a_person() -> None:
    assert masking.mask_key("cust-1", fake_pseudonym) == "cust-1"
    assert masking.mask_key("anon:cookie-9", fake_pseudonym) == "anon:cookie-9"
    assert masking.mask_key("email:an@x.vn", fake_pseudonym) == "email:~P(email:an@x.vn)"
    assert masking.mask_key("ext:shop:1", fake_pseudonym) == "ext:~P(ext:shop:1)"
    assert masking.mask_key(None, fake_pseudonym) is None


def test_a_timeline_page_loses_personal_fields_and_summaries() -> None:
    page = {
        "customer_id": "phone:+84900000001",
        "next_cursor": None,
        "events": [
            {
                "customer_id": "phone:+84900000001",
                "key": "phone:+84900000001",
                "type": "call_center.call",
                "summary": "inbound call: my husband is ill",
                "payload": {"notes_summary": "my husband is ill", "duration_seconds": 30},
            },
            {
                "customer_id": "c1",
                "key": "c1",
                "type": "commerce.purchased",
                "summary": "bought o-1 for 10 EUR",
                "payload": {"order_id": "o-1"},
            },
        ],
    }
    masked = masking.timeline_page(page, fake_pseudonym)
    call, purchase = masked["events"]
    assert masked["customer_id"] == "phone:~P(phone:+84900000001)"
    assert call["key"] == "phone:~P(phone:+84900000001)"
    assert call["payload"] == {"notes_summary": MASK, "duration_seconds": 30}
    assert call["summary"] == "call_center.call"
    assert purchase == page["events"][1]
    assert page["events"][0]["payload"]["notes_summary"] == "my husband is ill"  # untouched


def test_a_profile_keeps_its_shape_with_values_masked() -> None:
    profile = {
        "customer_id": "c1",
        "identifiers": ["customer:c1", "email:an@x.vn", "anon:a1"],
        "keys": ["c1", "email:an@x.vn"],
        "traits": {"name": "An", "city": "Hue", "cleared": None},
        "events": 3,
        "survey": None,
    }
    masked = masking.profile(profile, fake_pseudonym)
    assert masked["identifiers"] == ["customer:c1", "email:~P(email:an@x.vn)", "anon:a1"]
    assert masked["keys"] == ["c1", "email:~P(email:an@x.vn)"]
    assert masked["traits"] == {"name": MASK, "city": MASK, "cleared": None}
    assert masked["events"] == 3


def test_identity_links_lose_identifiers_and_free_text() -> None:
    doc = {
        "customer_id": "c1",
        "identifiers": [{"identifier": "phone:+849", "shared_by_customers": None}],
        "keys": ["c1"],
        "links": [
            {"a": "customer:c1", "b": "phone:+849", "state": "unlinked", "reason": "brother's"}
        ],
    }
    masked = masking.identity(doc, fake_pseudonym)
    assert masked["identifiers"][0]["identifier"] == "phone:~P(phone:+849)"
    (link,) = masked["links"]
    assert (link["a"], link["b"], link["reason"]) == ("customer:c1", "phone:~P(phone:+849)", MASK)
    assert link["state"] == "unlinked"


def test_violations_and_rankings_name_customers_by_pseudonym() -> None:
    doc = {"customer_id": None, "violations": [{"customer_id": "email:a@b.c", "rule": "consent"}]}
    assert masking.violations(doc, fake_pseudonym)["violations"][0]["customer_id"] == (
        "email:~P(email:a@b.c)"
    )
    assert masking.ranked([{"customer_id": "c9", "clv": 1.0}], fake_pseudonym) == [
        {"customer_id": "c9", "clv": 1.0}
    ]


def test_the_sql_pads_give_the_same_hmac_as_python() -> None:
    for secret in (b"short", b"x" * 64, b"y" * 100):
        inner, outer = hmac_pads(secret)
        message = b"email:an@x.vn"
        by_pads = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
        assert by_pads == hmac.new(secret, message, hashlib.sha256).hexdigest()


def test_the_pseudonym_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, pseudonym_secret=None)
    first = pseudonym_secret(settings)
    assert first == pseudonym_secret(settings) and len(first) == 64
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600
    pseudonym = pseudonymizer(settings)
    assert pseudonym("email:an@x.vn") == pseudonym("email:an@x.vn")
    assert len(pseudonym("email:an@x.vn")) == 16
    other = pseudonymizer(Settings(state_dir=tmp_path, pseudonym_secret="another"))
    assert other("email:an@x.vn") != pseudonym("email:an@x.vn")


def test_personal_fields_cover_every_version() -> None:
    fields = personal_fields_by_type()
    assert "notes_summary" in fields["call_center.call"]
    assert "commerce.purchased" not in fields


def test_the_embedded_server_trusts_loopback_only() -> None:
    rules = [line.split() for line in PG_HBA.splitlines() if line and not line.startswith("#")]
    assert rules
    for kind, _database, _user, *rest in rules:
        if kind == "local":
            continue
        address, method = rest
        assert method == "trust" and ipaddress.ip_network(address).is_loopback, rest

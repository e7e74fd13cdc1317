"""May we contact this customer, on this channel, for this purpose, at this time? Pure.

A decision is a function of two things on the customer's timeline: the consent and
contact-preference events that happened at or before the instant asked about (in event
time, so an opt-out that arrives late still governs what came after it), and the
outbound touchpoints in the seven days before it (for the weekly cap). Each rule gives a
check with its reason and the event its input comes from; a decision allows only when no
check denies. The same function judges every outbound touchpoint already on a timeline
(`violations`), so what the view lists and what a sending system is told never disagree.

The rules:
- consent: an opt-out of (channel, purpose) denies; an opt-in allows; without either, a
  purpose that needs an opt-in (`ContactRules.opt_in_purposes`, e.g. marketing under the
  GDPR) denies and any other allows.
- allowed channels: when stated, a channel not in them denies (an empty list denies all).
- quiet hours: a time inside the window, on the customer's own clock, denies.
- weekly cap: as many outbound touchpoints in the seven days before as the cap denies.
- unwanted topics: a topic the customer said they do not want denies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from schemas.payloads.profile import (
    PREFERENCE_FIELDS,
    QuietHours,
    upcast_preferences_v1_to_v2,
)

WEEK = timedelta(days=7)
POLICY_TYPES = ("consent.changed", "consent.preferences_set")
OUTBOUND_TYPES = ("call_center.call", "email.sent", "sales.approached")
RULES = ("consent", "allowed_channels", "quiet_hours", "weekly_cap", "unwanted_topics")


@dataclass(frozen=True)
class ContactRules:
    """What the law or the house adds to what customers state."""

    opt_in_purposes: frozenset[str] = frozenset()  # purposes contacted only after an opt-in


DEFAULT_CONTACT_RULES = ContactRules()


@dataclass(frozen=True)
class Fact:
    """A timeline row the policy reads: a consent or preference event, or a touchpoint."""

    at: datetime
    event_id: str
    type: str
    payload: Mapping[str, Any]
    campaign_id: str | None = None

    @property
    def stamp(self) -> tuple[datetime, str]:
        return (self.at, self.event_id)


@dataclass(frozen=True)
class Contact:
    """An outbound touchpoint: the business reached out to the customer."""

    at: datetime
    event_id: str
    type: str
    channel: str
    purpose: str
    topic: str | None

    @property
    def stamp(self) -> tuple[datetime, str]:
        return (self.at, self.event_id)


def outbound_contact(fact: Fact) -> Contact | None:
    """The touchpoint as a contact, or None for what the customer did themselves. Its
    purpose is marketing when it belongs to a campaign, service otherwise."""
    p = fact.payload
    if fact.type == "email.sent":
        campaign = p.get("campaign") or fact.campaign_id
        purpose = "marketing" if campaign else "service"
        return Contact(fact.at, fact.event_id, fact.type, "email", purpose, p.get("campaign"))
    if fact.type == "call_center.call" and p.get("direction") == "outbound":
        purpose = "marketing" if fact.campaign_id else "service"
        return Contact(fact.at, fact.event_id, fact.type, "call_center", purpose, p.get("topic"))
    if fact.type == "sales.approached":
        return Contact(fact.at, fact.event_id, fact.type, "sales", "marketing", None)
    return None


@dataclass(frozen=True)
class Setting:
    """A value of the policy, and the event that set it."""

    value: Any
    at: datetime
    event_id: str

    @property
    def stamp(self) -> tuple[datetime, str]:
        return (self.at, self.event_id)


@dataclass
class Policy:
    """Consent per "channel:purpose" and preferences per field (None: cleared), built by
    `fold_policy_event` in place."""

    consent: dict[str, Setting] = field(default_factory=dict)
    preferences: dict[str, Setting] = field(default_factory=dict)

    def stated(self, name: str) -> Setting | None:
        setting = self.preferences.get(name)
        return setting if setting is not None and setting.value is not None else None


def policy_at(facts: Iterable[Fact], at: datetime) -> Policy:
    """The policy in force at `at`: every consent and preference event up to it, each
    value last-writer-wins by (event time, event id), whatever order they came in."""
    policy = Policy()
    for fact in facts:
        if fact.at <= at:
            fold_policy_event(policy, fact)
    return policy


def fold_policy_event(policy: Policy, fact: Fact) -> None:
    """Fold one consent or preference event into `policy`, in place; each value is
    last-writer-wins by (event time, event id), so the order of folding does not matter."""
    p = fact.payload
    changes: list[tuple[dict[str, Setting], str, Any]]
    if fact.type == "consent.changed":
        key = f"{p['contact_channel']}:{p.get('purpose', 'marketing')}"
        changes = [(policy.consent, key, bool(p["opted_in"]))]
    elif fact.type == "consent.preferences_set":
        if "cleared" not in p:  # stored before version 2 (whose payloads always list it)
            p = upcast_preferences_v1_to_v2(dict(p))
        cleared = set(p["cleared"])
        changes = [
            (policy.preferences, name, None if name in cleared else p[name])
            for name in PREFERENCE_FIELDS
            if name in p or name in cleared
        ]
    else:
        return
    for target, name, value in changes:
        current = target.get(name)
        if current is None or fact.stamp > current.stamp:
            target[name] = Setting(value, fact.at, fact.event_id)


@dataclass(frozen=True)
class Request:
    channel: str
    purpose: str
    at: datetime
    topic: str | None = None


@dataclass(frozen=True)
class Check:
    """One rule's verdict on a request, why, and the event its input comes from."""

    rule: str
    allowed: bool
    reason: str
    event_id: str | None = None
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "verdict": "allow" if self.allowed else "deny",
            "reason": self.reason,
            "event_id": self.event_id,
            "at": self.at.isoformat() if self.at else None,
        }


@dataclass(frozen=True)
class Decision:
    request: Request
    checks: tuple[Check, ...]

    @property
    def allowed(self) -> bool:
        return all(c.allowed for c in self.checks)

    @property
    def denials(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.allowed)

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "decision": "allow" if self.allowed else "deny",
            "channel": r.channel,
            "purpose": r.purpose,
            "topic": r.topic,
            "at": r.at.isoformat(),
            "checks": [c.to_json() for c in self.checks],
        }


def decide(
    policy: Policy,
    request: Request,
    recent: Sequence[Contact],
    rules: ContactRules = DEFAULT_CONTACT_RULES,
) -> Decision:
    """Every rule's check of `request`; `recent` are the outbound touchpoints of the seven
    days before it (the caller picks them: see `contacts_before`)."""
    return Decision(
        request,
        (
            _consent(policy, request, rules),
            _allowed_channels(policy, request),
            _quiet_hours(policy, request),
            _weekly_cap(policy, request, recent),
            _unwanted_topics(policy, request),
        ),
    )


def contacts_before(
    contacts: Sequence[Contact], at: datetime, *, before: tuple[datetime, str] | None = None
) -> list[Contact]:
    """The contacts in the seven days up to `at` (inclusive), or, given a contact's stamp
    `before`, those of the seven days before that contact (it does not count itself)."""
    since = at - WEEK
    if before is None:
        return [c for c in contacts if since < c.at <= at]
    return [c for c in contacts if since < c.at and c.stamp < before]


def _from(setting: Setting) -> dict[str, Any]:
    return {"event_id": setting.event_id, "at": setting.at}


def _consent(policy: Policy, r: Request, rules: ContactRules) -> Check:
    setting = policy.consent.get(f"{r.channel}:{r.purpose}")
    if setting is None:
        if r.purpose in rules.opt_in_purposes:
            return Check(
                "consent", False, f"no opt-in to {r.purpose} via {r.channel}, which needs one"
            )
        return Check("consent", True, f"no consent recorded for {r.purpose} via {r.channel}")
    if setting.value:
        return Check("consent", True, f"opted in to {r.purpose} via {r.channel}", **_from(setting))
    return Check("consent", False, f"opted out of {r.purpose} via {r.channel}", **_from(setting))


def _allowed_channels(policy: Policy, r: Request) -> Check:
    setting = policy.stated("allowed_channels")
    if setting is None:
        return Check("allowed_channels", True, "no allowed channels stated")
    allowed = list(setting.value)
    if not allowed:
        return Check("allowed_channels", False, "allows no channel", **_from(setting))
    listed = ", ".join(allowed)
    if r.channel in allowed:
        return Check("allowed_channels", True, f"allows {listed}", **_from(setting))
    return Check("allowed_channels", False, f"allows only {listed}", **_from(setting))


@cache
def _quiet(window: tuple[tuple[str, str], ...]) -> QuietHours:
    return QuietHours.model_validate(dict(window))


def _quiet_hours(policy: Policy, r: Request) -> Check:
    setting = policy.stated("quiet_hours")
    if setting is None:
        return Check("quiet_hours", True, "no quiet hours stated")
    quiet = _quiet(tuple(sorted(setting.value.items())))
    local = r.at.astimezone(ZoneInfo(quiet.timezone))
    window = f"{quiet.start:%H:%M}–{quiet.end:%H:%M} {quiet.timezone}"
    inside = quiet.covers(local.time().replace(tzinfo=None))
    where = "inside" if inside else "outside"
    reason = f"{local:%H:%M} local ({local:%Z}) is {where} quiet hours {window}"
    return Check("quiet_hours", not inside, reason, **_from(setting))


def _weekly_cap(policy: Policy, r: Request, recent: Sequence[Contact]) -> Check:
    setting = policy.stated("max_contacts_per_week")
    count = len(recent)
    if setting is None:
        return Check("weekly_cap", True, f"no weekly cap stated ({count} in the last 7 days)")
    cap = int(setting.value)
    reason = f"{count} outbound contacts in the 7 days before, cap {cap} a week"
    return Check("weekly_cap", count < cap, reason, **_from(setting))


def _unwanted_topics(policy: Policy, r: Request) -> Check:
    setting = policy.stated("unwanted_topics")
    if setting is None:
        return Check("unwanted_topics", True, "no unwanted topics stated")
    if r.topic is None:
        return Check("unwanted_topics", True, "no topic given to check", **_from(setting))
    if r.topic in setting.value:
        return Check("unwanted_topics", False, f"does not want {r.topic!r}", **_from(setting))
    return Check("unwanted_topics", True, f"{r.topic!r} is not unwanted", **_from(setting))


@dataclass(frozen=True)
class Violation:
    """An outbound touchpoint that broke the policy in force when it happened."""

    contact: Contact
    check: Check


def violations(
    facts: Iterable[Fact], rules: ContactRules = DEFAULT_CONTACT_RULES
) -> list[Violation]:
    """Every outbound touchpoint among `facts` judged against the policy of its own
    instant and the touchpoints of the week before it; the denials, in event-time order.
    One sweep in event time: the policy and the week's window move with the touchpoints."""
    ordered = sorted(facts, key=lambda f: f.stamp)
    policy_facts = [f for f in ordered if f.type in POLICY_TYPES]
    contacts = [c for f in ordered if (c := outbound_contact(f)) is not None]
    policy = Policy()
    applied = window_start = 0
    found: list[Violation] = []
    for n, contact in enumerate(contacts):
        while applied < len(policy_facts) and policy_facts[applied].at <= contact.at:
            fold_policy_event(policy, policy_facts[applied])
            applied += 1
        while contacts[window_start].at <= contact.at - WEEK:
            window_start += 1
        recent = contacts[window_start:n]
        request = Request(contact.channel, contact.purpose, contact.at, contact.topic)
        found.extend(Violation(contact, c) for c in decide(policy, request, recent, rules).denials)
    return found

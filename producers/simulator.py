"""A population of customers living through every kind of touchpoint. Pure and deterministic.

`simulate(...)` yields Envelopes forever (take what you need with `itertools.islice`); the
same seed gives the same events, ids included. Nothing here does I/O or reads the clock, so
the demo, tests and benchmarks share it; pacing and publishing belong to the caller.

Each customer has a persona (how active, how much they spend, how they answer e-mail, how
satisfied they are). The clock advances story by story; a story is one episode (an e-mail
campaign, a web session, a purchase and its refund, a ticket…) whose events follow their
start by minutes to weeks, so, as in real feeds, events do not arrive in event-time order.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from projections.contact_policy import (
    OUTBOUND_TYPES,
    POLICY_TYPES,
    WEEK,
    Contact,
    Fact,
    Policy,
    Request,
    decide,
    fold_policy_event,
    outbound_contact,
)
from schemas import Channel, CustomerRef, Envelope, Source
from schemas.envelope import Payload
from schemas.payloads import (
    call_center,
    commerce,
    email,
    profile,
    sales,
    social,
    support,
    survey,
    web,
)
from schemas.payloads.profile import QuietHours

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

_CATALOG: dict[str, list[tuple[str, str, float]]] = {  # category: (sku, name, median price)
    "electronics": [("EL-100", "Headphones", 79), ("EL-220", "Smart speaker", 129)],
    "home": [("HO-310", "Coffee grinder", 45), ("HO-450", "Linen set", 89)],
    "fashion": [("FA-120", "Rain jacket", 119), ("FA-510", "Sneakers", 95)],
    "grocery": [("GR-010", "Espresso beans 1kg", 24), ("GR-077", "Green tea", 9)],
    "sports": [("SP-900", "Yoga mat", 35), ("SP-930", "Running watch", 249)],
}
_TOPICS = ["billing", "delivery", "upgrade", "cancellation", "technical"]
_AGENTS = ["Linh Tran", "Minh Nguyen", "Sara Okafor", "Tomás Ruiz", "Hana Kim"]
_SALESPEOPLE = ["An Pham", "Julia Weber", "Kofi Mensah"]
_PLATFORMS = ["instagram", "x", "facebook", "tiktok"]
_COMMUNITIES = ["reddit r/homebarista", "tinhte.vn", "community.example.com"]
_CAMPAIGNS = ["spring-sale", "newsletter-weekly", "loyalty-tier-up", "win-back"]
_PAGES = ["/", "/products", "/products/espresso", "/pricing", "/help", "/account", "/cart"]
_CONTACTABLE = [Channel.EMAIL, Channel.CALL_CENTER, Channel.SALES]
_ZONES = [
    "Asia/Ho_Chi_Minh",
    "Europe/Berlin",
    "Africa/Lagos",
    "Europe/Madrid",
    "Asia/Seoul",
    "America/New_York",
]
_CITIES = ["Hanoi", "Ho Chi Minh City", "Berlin", "Lagos", "Madrid", "Seoul"]
_PRAISE = ["love the new grinder", "support sorted it in minutes", "best beans I have had"]
_GRIPES = ["parcel is late again", "app keeps logging me out", "refund still not here"]


@dataclass(frozen=True)
class Persona:
    """How one simulated customer behaves; drawn once per customer from the seed."""

    customer_id: str
    email: str
    phone: str
    handle: str
    activity: float  # relative chance of being the one a story is about
    spend_scale: float  # heavy-tailed: a few customers spend most
    currency: str
    open_rate: float
    reply_rate: float
    satisfaction: float  # 0 (unhappy) .. 1 (delighted)
    favourite: str  # favourite category

    def ref(self, **identifiers: object) -> CustomerRef:
        return CustomerRef(customer_id=self.customer_id, **identifiers)


Emit = tuple[float, Payload, CustomerRef | None]  # (seconds after story start, payload, who)
Story = Callable[[random.Random, Persona, datetime], list[Emit]]  # at: when the story starts


def personas(customers: int, rng: random.Random) -> list[Persona]:
    population = []
    for n in range(1, customers + 1):
        cid = f"cust-{n:06d}"
        population.append(
            Persona(
                customer_id=cid,
                email=f"{cid}@example.com",
                phone=f"+84 90{n % 10_000_000:07d}",
                handle=f"@{cid.replace('-', '_')}",
                activity=rng.lognormvariate(0, 0.8),
                spend_scale=rng.paretovariate(2.5),
                currency=rng.choices(["EUR", "USD", "VND"], [5, 4, 1])[0],
                open_rate=rng.betavariate(2, 5),
                reply_rate=rng.betavariate(1, 30),
                satisfaction=rng.betavariate(5, 2),
                favourite=rng.choice(list(_CATALOG)),
            )
        )
    return population


def simulate(
    customers: int = 1000,
    *,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    stories_per_customer_per_day: float = 0.5,
    violation_rate: float = 0.05,
) -> Iterator[Envelope]:
    """Events of `customers` simulated customers from `start` on, forever, same for a seed.

    The business's senders ask the contact policy before an outbound touchpoint and drop
    the story when it is denied, except `violation_rate` of the time (a campaign sent to
    the wrong list, an agent who dials anyway): what `rapport.contact_violations` shows."""
    if not 0 <= violation_rate <= 1:
        raise ValueError(f"violation_rate {violation_rate} is not between 0 and 1")
    rng = random.Random(seed)
    sender = _Sender(violation_rate)
    population = personas(customers, rng)
    # Cumulative once: `choices` with plain weights re-sums all of them on every draw, which
    # made each story cost O(customers). Same draws, so the same events for a seed.
    cum_weights = list(itertools.accumulate(p.activity for p in population))
    stories, story_weights = zip(*_STORIES, strict=True)
    mean_gap = 86_400 / (customers * stories_per_customer_per_day)
    clock = 0.0
    while True:
        clock += rng.expovariate(1 / mean_gap)
        persona = rng.choices(population, cum_weights=cum_weights)[0]
        story = rng.choices(stories, story_weights)[0]
        began = start + timedelta(seconds=clock)
        emits = story(rng, persona, began)
        if not sender.sends(rng, persona.customer_id, began, emits):
            continue
        for offset, payload, who in emits:
            yield Envelope.new(
                payload,
                customer=who or persona.ref(),
                occurred_at=began + timedelta(seconds=offset),
                source=Source(system=_SYSTEMS[payload.channel], channel=payload.channel),
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )


class _Sender:
    """The business's sending systems, as far as the contact policy goes: per customer the
    policy its consent and preference events set, and its outbound touchpoints."""

    def __init__(self, violation_rate: float) -> None:
        self.violation_rate = violation_rate
        self.policies: dict[str, Policy] = {}
        self.contacts: dict[str, deque[Contact]] = {}
        self.events = 0  # a stand-in event id: stories arrive in event-time order here

    def sends(
        self, rng: random.Random, customer_id: str, began: datetime, emits: list[Emit]
    ) -> bool:
        """Whether the story happens: it does unless it reaches out against the policy
        (and is not one of the violations let through); then its events are recorded."""
        policy = self.policies.setdefault(customer_id, Policy())
        recent = self.contacts.setdefault(customer_id, deque())
        facts = []
        for offset, payload, _ in emits:
            if payload.event_type in POLICY_TYPES or payload.event_type in OUTBOUND_TYPES:
                self.events += 1
                wire = payload.model_dump(mode="json", exclude_none=True)
                at = began + timedelta(seconds=offset)
                facts.append(Fact(at, f"{self.events:012d}", payload.event_type, wire))
        contacts = [c for f in facts if (c := outbound_contact(f)) is not None]
        for contact in contacts:
            while recent and recent[0].at <= contact.at - WEEK:
                recent.popleft()
            request = Request(contact.channel, contact.purpose, contact.at, contact.topic)
            denied = not decide(policy, request, list(recent)).allowed
            if denied and rng.random() >= self.violation_rate:
                return False
        recent.extend(contacts)
        for fact in facts:
            fold_policy_event(policy, fact)
        return True


_SYSTEMS = {
    Channel.CALL_CENTER: "genesys-cloud",
    Channel.EMAIL: "mailchimp",
    Channel.SOCIAL: "sprout-social",
    Channel.COMMUNITY: "brandwatch",
    Channel.COMMERCE: "shopify",
    Channel.SALES: "salesforce",
    Channel.SUPPORT: "zendesk",
    Channel.SURVEY: "typeform",
    Channel.WEB: "website",
    Channel.PROFILE: "website",
    Channel.CONSENT: "preference-center",
    Channel.IDENTITY: "identity-service",
}

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86_400.0


def _call(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    topic = rng.choice(_TOPICS)
    outbound = topic in ("upgrade", "cancellation") and rng.random() < 0.5
    answered = not outbound or rng.random() < 0.7
    if answered:
        outcome = rng.choices(
            list(call_center.CallOutcome)[:4], [0.5 + p.satisfaction / 2, 0.2, 0.2, 0.1]
        )[0]
    else:
        outcome = rng.choice([call_center.CallOutcome.NO_ANSWER, call_center.CallOutcome.VOICEMAIL])
    call = call_center.CallCenterCall(
        direction=call_center.CallDirection.OUTBOUND
        if outbound
        else call_center.CallDirection.INBOUND,
        duration_seconds=int(rng.lognormvariate(5.3, 0.6)) if answered else rng.randint(5, 40),
        agent=rng.choice(_AGENTS),
        queue=topic,
        outcome=outcome,
        topic=topic,
    )
    return [(0.0, call, p.ref(phone=p.phone))]


def _email_campaign(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    campaign = rng.choice(_CAMPAIGNS)
    common = {
        "message_id": f"msg-{rng.getrandbits(48):012x}",
        "campaign": campaign,
        "subject": f"{campaign.replace('-', ' ').title()} for you",
    }
    who = p.ref(email=p.email)
    out: list[Emit] = [(0.0, email.EmailSent(**common), who)]
    if rng.random() < 0.03:
        kind = rng.choice(list(email.BounceKind))
        return [*out, (30.0, email.EmailBounced(**common, bounce=kind, reason="mailbox full"), who)]
    out.append((20.0, email.EmailDelivered(**common), who))
    if rng.random() >= p.open_rate:
        return out
    t = rng.expovariate(1 / (6 * _HOUR))
    out.append((t, email.EmailOpened(**common), who))
    if rng.random() < 0.25:
        t += rng.uniform(5, 120)
        out.append(
            (t, email.EmailClicked(**common, url=f"https://shop.example.com/{campaign}"), who)
        )
    if rng.random() < p.reply_rate * 10:
        t += rng.expovariate(1 / _HOUR)
        out.append((t, email.EmailReplied(**common, reply_summary="asked about delivery"), who))
    if rng.random() < 0.02 * (1.5 - p.satisfaction):
        t += rng.uniform(5, 60)
        out.append((t, email.EmailUnsubscribed(**common, list_name=campaign), who))
        optout = profile.ConsentChanged(contact_channel=Channel.EMAIL, opted_in=False)
        out.append((t + 1, optout, p.ref()))
    return out


def _social_burst(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    platform = rng.choice(_PLATFORMS)
    post = f"https://{platform}.example/brand/posts/{rng.getrandbits(32)}"
    known = rng.random() < 0.7  # else only the handle is known, linked later
    who = (
        p.ref(social_handles={platform: p.handle})
        if known
        else CustomerRef(social_handles={platform: p.handle})
    )
    mood = p.satisfaction * 2 - 1
    out: list[Emit] = []
    t = 0.0
    for _ in range(1 + int(rng.expovariate(0.5))):
        t += rng.expovariate(1 / (20 * _MINUTE))
        sentiment = max(-1.0, min(1.0, round(rng.gauss(mood, 0.3), 2)))
        kind = rng.choices(["liked", "shared", "commented", "mentioned"], [6, 2, 2, 1])[0]
        text = rng.choice(_PRAISE if sentiment > 0 else _GRIPES)
        fields = {"platform": platform, "post": post, "sentiment": sentiment}
        if kind == "liked":
            payload: Payload = social.SocialLiked(**fields)
        elif kind == "shared":
            payload = social.SocialShared(**fields)
        elif kind == "commented":
            payload = social.SocialCommented(**fields, text=text)
        else:
            payload = social.SocialMentioned(**fields, text=text)
        out.append((t, payload, who))
    if rng.random() < 0.15:
        out.append((t + 5, social.SocialFollowed(platform=platform), who))
    if not known and rng.random() < 0.5:
        link = profile.IdentityLinked(
            identifier=f"social:{platform}:{p.handle}",
            linked_to=f"customer:{p.customer_id}",
            evidence="handle given in a support chat",
        )
        out.append((t + rng.expovariate(1 / _DAY), link, p.ref()))
    return out


def _forum_mention(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    sentiment = max(-1.0, min(1.0, round(rng.gauss(p.satisfaction * 2 - 1, 0.4), 2)))
    mention = social.CommunityMentioned(
        community=rng.choice(_COMMUNITIES),
        thread=rng.choice(["Best espresso setup?", "Delivery times lately", "Review: grinder"]),
        text=rng.choice(_PRAISE if sentiment > 0 else _GRIPES),
        sentiment=sentiment,
    )
    return [(0.0, mention, p.ref(external_ids={"forum": p.handle}))]


def _price(rng: random.Random, median: float, p: Persona) -> Decimal:
    # Lognormal around the catalogue price, scaled by the customer's Pareto spend level:
    # most orders are ordinary, a few customers and a few orders are very large.
    value = median * rng.lognormvariate(0, 0.35) * p.spend_scale
    if p.currency == "VND":
        return Decimal(round(value * 25_000, -3))
    return Decimal(f"{value:.2f}")


def _purchase(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    order_id = f"ord-{rng.getrandbits(40):010x}"
    items = []
    for _ in range(1 + int(rng.expovariate(1.2))):
        category = p.favourite if rng.random() < 0.6 else rng.choice(list(_CATALOG))
        sku, name, median = rng.choice(_CATALOG[category])
        items.append(
            commerce.LineItem(
                sku=sku,
                name=name,
                category=category,
                quantity=1 + int(rng.expovariate(2)),
                unit_price=_price(rng, median, p),
            )
        )
    amount = sum((i.unit_price * i.quantity for i in items), Decimal(0))
    margin = (amount * Decimal(str(round(rng.uniform(0.12, 0.4), 2)))).quantize(Decimal("0.01"))
    bought = commerce.Purchased(
        order_id=order_id,
        amount=amount,
        currency=p.currency,
        margin=margin,
        items=items,
        category=items[0].category,
    )
    out: list[Emit] = [(0.0, bought, None)]
    if rng.random() < 0.06 * (1.5 - p.satisfaction):
        refund = amount if rng.random() < 0.6 else (amount / 2).quantize(Decimal("0.01"))
        reason = rng.choice(["damaged", "not as described", "changed mind"])
        refunded = commerce.Refunded(
            order_id=order_id, amount=refund, currency=p.currency, reason=reason
        )
        out.append((rng.uniform(2, 20) * _DAY, refunded, None))
    return out


def _ticket(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    ticket_id = f"T-{rng.getrandbits(24):07d}"
    topic = rng.choice(_TOPICS)
    priority = rng.choices(list(support.Priority), [3, 5, 2, 0.5])[0]
    out: list[Emit] = [
        (
            0.0,
            support.TicketOpened(
                ticket_id=ticket_id, subject=f"{topic} issue", category=topic, priority=priority
            ),
            None,
        )
    ]
    t = 0.0
    for status in rng.sample(["pending", "on-hold", "waiting on customer"], rng.randint(0, 2)):
        t += rng.expovariate(1 / (8 * _HOUR))
        out.append((t, support.TicketUpdated(ticket_id=ticket_id, status=status), None))
    if rng.random() < 0.9:
        t += rng.expovariate(1 / _DAY)
        score = max(1, min(5, round(1 + 4 * p.satisfaction + rng.gauss(0, 0.7))))
        resolved = support.TicketResolved(
            ticket_id=ticket_id, resolution="fixed", satisfaction=score
        )
        out.append((t, resolved, None))
    return out


def _survey(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    spend = []
    for category in rng.sample(list(_CATALOG), rng.randint(1, 3)):
        total = _price(rng, 600, p)
        share = Decimal(str(round(rng.betavariate(2, 3), 2)))
        spend.append(
            survey.CategorySpend(
                category=category,
                total=total,
                with_us=(total * share).quantize(Decimal("0.01")),
                currency=p.currency,
            )
        )
    nps = max(0, min(10, round(p.satisfaction * 10 + rng.gauss(0, 1.2))))
    answer = survey.SurveyResponded(
        survey_id=rng.choice(["nps-2026-q1", "needs-2026"]),
        nps=nps,
        interests=rng.sample(list(_CATALOG), 2),
        needs=rng.sample(["faster delivery", "lower prices", "better app", "loyalty perks"], 1),
        category_spend=spend,
    )
    return [(0.0, answer, None)]


def _consent(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    if rng.random() < 0.5:
        channel = rng.choice([*_CONTACTABLE, Channel.SOCIAL])
        change = profile.ConsentChanged(
            contact_channel=channel,
            purpose=rng.choice(["marketing", "service"]),
            opted_in=rng.random() < 0.4 + p.satisfaction / 3,
            legal_basis="consent",
        )
        return [(0.0, change, None)]
    return [(0.0, _preferences_update(rng, p), None)]


def _preferences_update(rng: random.Random, p: Persona) -> profile.ContactPreferencesSet:
    """What a preference centre sends: the whole form (a field left empty is cleared), or
    one change (quiet hours, the weekly cap), or a field cleared. Coherent by the contract."""
    zone = _ZONES[int(p.customer_id.rsplit("-", 1)[-1], 36) % len(_ZONES)]
    kind = rng.random()
    if kind < 0.4:
        if rng.random() < 0.05:
            return profile.ContactPreferencesSet(allowed_channels=[])  # no contact at all
        wanted = rng.sample(_CAMPAIGNS, 2)
        others = [t for t in _CAMPAIGNS + _TOPICS if t not in wanted]
        return profile.ContactPreferencesSet(
            allowed_channels=rng.sample(_CONTACTABLE, rng.randint(1, len(_CONTACTABLE))),
            max_contacts_per_week=rng.choice([None, 2, 3, 5]),
            topics=wanted,
            unwanted_topics=rng.sample(others, rng.randint(0, 2)),
            quiet_hours=_quiet_hours(rng, zone) if rng.random() < 0.6 else None,
        )
    if kind < 0.7:
        return profile.ContactPreferencesSet(quiet_hours=_quiet_hours(rng, zone))
    if kind < 0.85:
        return profile.ContactPreferencesSet(max_contacts_per_week=rng.randint(1, 5))
    cleared = rng.choice(["quiet_hours", "max_contacts_per_week", "unwanted_topics"])
    return profile.ContactPreferencesSet.model_validate({cleared: None})


def _quiet_hours(rng: random.Random, zone: str) -> QuietHours:
    return QuietHours(
        start=time(rng.choice([20, 21, 22])), end=time(rng.choice([7, 8, 9])), timezone=zone
    )


def _web_session(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    session = f"s-{rng.getrandbits(40):010x}"
    anonymous = CustomerRef(anonymous_id=f"anon-{rng.getrandbits(48):012x}")
    logged_in = rng.random() < 0.5
    who = p.ref() if logged_in else anonymous
    landing = rng.choice(_PAGES)
    out: list[Emit] = [
        (
            0.0,
            web.WebVisited(
                session_id=session,
                landing_url=f"https://shop.example.com{landing}",
                utm={"source": rng.choice(["google", "newsletter", "instagram"])},
            ),
            who,
        )
    ]
    t = 0.0
    for page in rng.choices(_PAGES, k=1 + int(rng.expovariate(0.4))):
        t += rng.expovariate(1 / 40)
        viewed = web.PageViewed(
            url=f"https://shop.example.com{page}",
            title=page.strip("/") or "home",
            session_id=session,
        )
        out.append((t, viewed, who))
    if rng.random() < 0.2:
        t += 30
        form = web.FormSubmitted(
            form_id=rng.choice(["newsletter-signup", "contact-us"]),
            fields={"city": rng.choice(_CITIES)},
        )
        out.append((t, form, who))
    if not logged_in and rng.random() < 0.3:  # logs in: the session becomes theirs
        link = profile.IdentityLinked(
            identifier=f"anon:{anonymous.anonymous_id}",
            linked_to=f"customer:{p.customer_id}",
            evidence=f"login in session {session}",
        )
        out.append((t + 5, link, p.ref(anonymous_id=anonymous.anonymous_id)))
        if rng.random() < 0.05:  # a shared computer: the session was not only theirs
            unlink = profile.IdentityUnlinked(
                identifier=f"anon:{anonymous.anonymous_id}",
                unlinked_from=f"customer:{p.customer_id}",
                reason="a shared computer at a cafe",
            )
            out.append((t + rng.expovariate(1 / _DAY), unlink, p.ref()))
    if rng.random() < 0.05:
        wish = profile.CustomEvent(
            name="Wishlist Added", properties={"sku": rng.choice(_CATALOG[p.favourite])[0]}
        )
        out.append((t + 10, wish, who))
    return out


def _sales(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    person = rng.choice(_SALESPEOPLE)
    out: list[Emit] = [
        (
            0.0,
            sales.SalesApproached(salesperson=person, approach=rng.choice(list(sales.Approach))),
            None,
        )
    ]
    if rng.random() < 0.5:
        return out
    t = rng.uniform(1, 3) * _DAY
    out.append(
        (
            t,
            sales.AppointmentSet(
                salesperson=person,
                scheduled_for=at + timedelta(seconds=t + 2 * _DAY),
                location="showroom",
            ),
            None,
        )
    )
    t += rng.uniform(2, 10) * _DAY
    if rng.random() < 0.8:
        held = sales.MeetingHeld(
            salesperson=person, duration_minutes=rng.randint(15, 90), outcome="quote sent"
        )
        out.append((t, held, None))
    else:
        cancelled = sales.MeetingCancelled(
            salesperson=person, cancelled_by="customer", reason="travel"
        )
        out.append((t, cancelled, None))
    return out


def _profile(rng: random.Random, p: Persona, at: datetime) -> list[Emit]:
    traits: dict[str, profile.TraitValue] = {"city": rng.choice(_CITIES)}
    if rng.random() < 0.5:
        traits["birthday"] = (
            f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    return [(0.0, profile.ProfileUpdated(traits=traits), None)]


_STORIES: list[tuple[Story, float]] = [
    (_web_session, 25),
    (_email_campaign, 25),
    (_purchase, 12),
    (_social_burst, 10),
    (_call, 8),
    (_ticket, 6),
    (_forum_mention, 3),
    (_survey, 3),
    (_consent, 3),
    (_sales, 3),
    (_profile, 2),
]

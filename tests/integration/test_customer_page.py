"""The customer-360 pages (/ui/) in a real headless Chromium, over real PostgreSQL
projections served by the read API over HTTP. Screenshots go to artifacts/screenshots/
(or $RAPPORT_ARTIFACTS/screenshots)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.bootstrap import engine as make_engine
from infra.settings import Settings
from infra.status import DeadLetters, PartitionLag, Service, Status, Worker
from projections.postgres.population import score_population
from projections.postgres.store import PostgresStore, create_schema
from projections.store import PositionedEvent
from schemas import CustomerRef, Envelope
from schemas.payloads.profile import ProfileUpdated
from tests.support import ReadApi, serving_api, wait_for
from tests.workload import mixed_events

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "needs Chromium and its driver at /usr/bin/chromium and /usr/bin/chromedriver: "
    "`apt-get install chromium chromium-driver` (as root), or `make browser`"
)
PHONE = "+84 90 123 4567"
CUSTOMER = "cust-00000"
EMAIL = "c0@example.com"

ARTIFACTS = Path(os.environ.get("RAPPORT_ARTIFACTS", Path(__file__).parents[2] / "artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture
def seeded(rapport_settings: Settings) -> Iterator[tuple[Settings, list[Envelope]]]:
    """Two customers with 130 events each (one also known by a phone number), projected
    by the store the worker uses."""
    events = mixed_events(customers=2, per_customer=130, seed=19)
    first = min(e.occurred_at for e in events)
    events.append(
        Envelope.new(
            ProfileUpdated(traits={"city": "Hue"}),
            customer=CustomerRef(customer_id=CUSTOMER, phone=PHONE),
            occurred_at=first,
            received_at=first,
            event_id=uuid.uuid4(),
        )
    )
    engine = make_engine(rapport_settings)
    create_schema(engine, "core_v1")
    PostgresStore(engine, "core_v1").apply_batch(
        [PositionedEvent("t", 0, n, e) for n, e in enumerate(events)]
    )
    # Ranked, as the worker's population scorer would: tiers, RFM bands, top customers.
    score_population(engine, "core_v1", as_of=max(e.occurred_at for e in events))
    yield rapport_settings, events
    engine.dispose()


# What `rapport status --json` answers (infra.status), built from its own types so the
# page and the status cannot drift apart.
FAKE_OPERATIONS: dict[str, Any] = Status(
    checked_at=datetime(2026, 1, 2, 3, 5, tzinfo=UTC),
    topic="rapport.touchpoints",
    services=[Service("kafka", "up", "127.0.0.1:19092"), Service("worker", "up", "1 in group")],
    active_version="core_v1",
    partitions=[PartitionLag(0, 1000, 990, 10, None), PartitionLag(1, 800, 768, 32, None)],
    freshness_s=3.5,
    dead_letters=DeadLetters(
        3,
        {"decode: DecodeError": 2, "fold: RecordRefused": 1},
        [
            {
                "ref": "1:77",
                "failed_at": "2026-01-02T03:04:05+00:00",
                "stage": "decode",
                "error_type": "DecodeError",
                "error": "amount: must be positive (got -3)",
                "event_id": None,
            }
        ],
    ),
    workers=[Worker("faust-0.15.3-w1", "127.0.0.1:6066", [0, 1], True, None)],
).to_json()


@pytest.fixture
def served(seeded: tuple[Settings, list[Envelope]]) -> Iterator[ReadApi]:
    settings, _ = seeded
    with serving_api(make_engine(settings), operations=lambda: FAKE_OPERATIONS) as api:
        yield api


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Selenium; never lets Selenium Manager fetch anything."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"browser tests {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests need selenium: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1366,768",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def sign_in(driver: Any, api: ReadApi, client: httpx.Client, then: str = "/ui/") -> None:
    from selenium.webdriver.common.by import By

    driver.get(api.base + then)
    wait_for(lambda: "/ui/sign-in" in driver.current_url, what="redirect to sign-in", timeout=10)
    field = driver.find_element(By.ID, "key")
    field.send_keys(key_of(client))
    field.submit()
    wait_for(lambda: "/ui/sign-in" not in driver.current_url, what="signed in", timeout=10)


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.exists() and path.stat().st_size > 0, path
    return path


def rows(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        r.get_attribute("data-event-id")
        for r in driver.find_elements(By.CSS_SELECTOR, "#timeline-rows tr")
    ]


def test_agent_finds_a_customer_and_reads_the_page(
    served: ReadApi, browser: Any, seeded: tuple[Settings, list[Envelope]]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, events = seeded
    mine = sorted(
        (e for e in events if e.customer.customer_id == CUSTOMER),
        key=lambda e: (e.occurred_at, e.event_id),
        reverse=True,
    )
    sign_in(browser, served, served.agent)
    assert browser.current_url.endswith("/ui/")

    # Keyboard only: a Tab reaches the skip link first, then (past the header) the search
    # field, which has a label.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    for _ in range(10):
        if browser.switch_to.active_element.get_attribute("id") == "q":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    search = browser.switch_to.active_element
    assert search.get_attribute("id") == "q", "the search field is not reachable by Tab"
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "no visible focus on the search field"
    label = browser.find_element(By.CSS_SELECTOR, "label[for=q]")
    assert label.text.strip()

    # Found by e-mail, typed and sent with the keyboard.
    search.send_keys(EMAIL, Keys.ENTER)
    wait_for(lambda: f"/ui/customers/{CUSTOMER}" in browser.current_url, what="customer page")
    assert CUSTOMER in browser.find_element(By.TAG_NAME, "h1").text
    identifiers = browser.find_element(By.CSS_SELECTOR, ".identifiers").text
    assert EMAIL in identifiers

    assert browser.execute_script(  # fits the laptop's width: no sideways scrolling
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    screenshot(browser, "customer-page")

    # The first page: newest first.
    first = rows(browser)
    assert first == [str(e.event_id) for e in mine[: len(first)]] and len(first) == 25

    # Charts: SVG with drawn bars and a line, labelled.
    for chart in ("chart-channels", "chart-purchases", "chart-value"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-channels svg rect.bar")
    assert bars and all(float(b.get_attribute("height")) > 0 for b in bars)
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-purchases svg rect.bar")
    path = browser.find_element(By.CSS_SELECTOR, "#chart-value svg path.line")
    assert path.get_attribute("d").startswith("M") and " L" in path.get_attribute("d")

    # The scores' explanation, the base's ranking included, loaded when asked for.
    assert not browser.find_elements(By.CSS_SELECTOR, "details.lineage")
    browser.find_element(By.CSS_SELECTOR, "#why > summary").click()

    def reasons() -> list[str]:
        return [d.text for d in browser.find_elements(By.CSS_SELECTOR, "details.lineage summary")]

    why = wait_for(reasons, what="the explanation", timeout=10)
    assert "p_active" in why and "tier (ranked in the base)" in why, why
    explained = browser.find_element(By.CSS_SELECTOR, "details.lineage")
    explained.find_element(By.TAG_NAME, "summary").click()
    assert explained.find_element(By.TAG_NAME, "pre").text.startswith("{")

    # A payload on demand.
    payload = browser.find_element(By.CSS_SELECTOR, "#timeline-rows tr details")
    payload.find_element(By.TAG_NAME, "summary").click()
    assert payload.find_element(By.TAG_NAME, "pre").text.startswith("{")
    screenshot(browser, "customer-page-payload")

    # "More" adds the next rows in place, no duplicates, until the end.
    while browser.find_elements(By.ID, "more"):
        before = len(rows(browser))
        browser.find_element(By.ID, "more").click()
        wait_for(lambda b=before: len(rows(browser)) > b, what="more rows", timeout=10)
    seen = rows(browser)
    assert len(seen) == len(set(seen)) == len(mine)
    assert seen == [str(e.event_id) for e in mine]
    assert browser.find_element(By.CSS_SELECTOR, "#more-slot .end")

    # Filters change the rows: call-center calls only.
    browser.find_element(By.CSS_SELECTOR, "input[name=channel][value=call_center]").click()
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    wait_for(lambda: "channel=call_center" in browser.current_url, what="filtered page")
    calls = [e for e in mine if e.channel.value == "call_center"]
    shown = rows(browser)
    assert shown == [str(e.event_id) for e in calls[: len(shown)]] and shown
    channels = {
        c.text for c in browser.find_elements(By.CSS_SELECTOR, "#timeline-rows td:nth-child(2)")
    }
    assert channels == {"call_center"}
    screenshot(browser, "customer-page-filtered")

    # Found by phone, written another way than it was stored.
    browser.get(f"{served.base}/ui/")
    browser.find_element(By.ID, "q").send_keys("+84901234567", Keys.ENTER)
    wait_for(lambda: f"/ui/customers/{CUSTOMER}" in browser.current_url, what="found by phone")

    # A plain link works without the script: the next page of the timeline.
    more = browser.find_element(By.ID, "more").get_attribute("href")
    browser.get(more)
    assert rows(browser) == [str(e.event_id) for e in mine[25:50]]

    # Signing out forgets the key.
    browser.find_element(By.CSS_SELECTOR, ".sign-out button").click()
    wait_for(lambda: "/ui/sign-in" in browser.current_url, what="signed out")
    browser.get(f"{served.base}/ui/customers/{CUSTOMER}")
    assert "/ui/sign-in" in browser.current_url


def test_analyst_sees_masked_identifiers_value_and_operations(
    served: ReadApi, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, served, served.analyst, then=f"/ui/customers/{CUSTOMER}")
    wait_for(lambda: f"/ui/customers/{CUSTOMER}" in browser.current_url, what="customer page")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert EMAIL not in page and "+84901234567" not in page
    identifiers = browser.find_element(By.CSS_SELECTOR, ".identifiers").text
    assert "email:" in identifiers, identifiers  # the kind stays; the value is a pseudonym
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-channels svg rect.bar")
    screenshot(browser, "customer-page-analyst")

    browser.get(f"{served.base}/ui/value")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Value"
    tiers = browser.find_elements(By.CSS_SELECTOR, "#tiers-h ~ table tbody th[scope=row]")
    assert tiers, "no tiers"
    bands = browser.find_elements(By.CSS_SELECTOR, "#bands-h ~ table tbody tr")
    assert bands and all(r.find_elements(By.CSS_SELECTOR, "th[scope=row]") for r in bands)
    top = browser.find_elements(By.CSS_SELECTOR, "#top-h ~ table tbody th[scope=row] a")
    assert {a.text for a in top} == {"cust-00000", "cust-00001"}
    screenshot(browser, "value-page")
    top[0].click()
    # An analyst's page addresses are sealed (readapi/addresses.py).
    wait_for(lambda: "/ui/customers/~" in browser.current_url, what="a top customer")
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline-rows tr")

    browser.get(f"{served.base}/ui/operations")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "decode: DecodeError" in main and "1:77" in main
    assert "amount: must be positive" not in main  # an error's text can quote personal data
    assert "faust-0.15.3-w1" in main and "42 records" in main
    cells = browser.find_elements(By.CSS_SELECTOR, "#lag-h ~ table tbody tr")
    assert len(cells) == 2
    screenshot(browser, "operations-page")


def test_agent_may_not_see_value_and_admin_sees_no_customer(served: ReadApi, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, served, served.agent, then="/ui/value")
    assert (
        "This page is for keys with role analyst" in browser.find_element(By.TAG_NAME, "main").text
    )
    browser.find_element(By.CSS_SELECTOR, ".sign-out button").click()
    wait_for(lambda: "/ui/sign-in" in browser.current_url, what="signed out")

    sign_in(browser, served, served.admin, then=f"/ui/customers/{CUSTOMER}")
    assert "role agent or analyst" in browser.find_element(By.TAG_NAME, "main").text
    assert EMAIL not in browser.page_source
    browser.get(f"{served.base}/ui/operations")
    assert "core_v1" in browser.find_element(By.TAG_NAME, "main").text


def test_sign_in_and_forms_over_http(served: ReadApi) -> None:
    """What a browser test cannot easily show: cookie flags, refusals, cross-site posts."""
    here = served.base
    with httpx.Client(base_url=here, timeout=30) as web:
        assert web.get("/").headers["location"] == "/ui/"
        gone = web.get(f"/ui/customers/{CUSTOMER}")
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/ui/sign-in?next=")

        wrong = web.post("/ui/sign-in", data={"key": "rr_nonsense"}, headers={"Origin": here})
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text

        cross = web.post(
            "/ui/sign-in", data={"key": key_of(served.agent)}, headers={"Origin": "https://evil"}
        )
        assert cross.status_code == 403 and "rapport_key" not in cross.headers.get("set-cookie", "")
        bare = web.post("/ui/sign-in", data={"key": key_of(served.agent)})
        assert bare.status_code == 403  # neither Origin nor Referer: refused

        ok = web.post(
            "/ui/sign-in",
            data={"key": key_of(served.agent), "next": "https://evil/"},
            headers={"Origin": here},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/ui" in cookie

        page = web.get(f"/ui/customers/{CUSTOMER}")
        assert page.status_code == 200 and EMAIL in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert web.get("/ui").headers["location"] == "/ui/"
        assert "tier (ranked in the base)" not in page.text  # the explanation is on demand
        explained = web.get(f"/ui/customers/{CUSTOMER}", params={"explain": 1})
        assert (
            "tier (ranked in the base)" in explained.text
            and '<details id="why" class="why" open' in explained.text
        )
        why = web.get(f"/ui/customers/{CUSTOMER}", params={"part": "why"})
        assert why.text.lstrip().startswith('<div id="why-body">') and "p_active" in why.text
        assert web.get(f"/ui/customers/{CUSTOMER}", params={"part": "all"}).status_code == 400
        assert web.get("/ui/customers/nobody").status_code == 404
        assert web.get(f"/ui/customers/{CUSTOMER}", params={"cursor": "junk!"}).status_code == 400
        assert web.get("/ui/static/page.css").status_code == 200
        assert web.get("/ui/static/../app.py").status_code == 404

        refused = web.post("/ui/sign-out", headers={"Origin": "https://evil"})
        assert refused.status_code == 403
        assert web.get(f"/ui/customers/{CUSTOMER}").status_code == 200  # still signed in

        # A key revoked elsewhere stops working on the next request.
        name = next(k.name for k in served.keys.list() if k.role.value == "agent")
        served.keys.revoke(name)
        assert web.get(f"/ui/customers/{CUSTOMER}").status_code == 303

    docs = served.agent.get("/openapi.json").json()
    assert not any(p.startswith("/ui") for p in docs["paths"])


def test_an_analyst_never_reads_a_personal_identifier_in_a_page_address(
    rapport_settings: Settings,
) -> None:
    """A customer known by no customer id is filed under its e-mail key: an analyst who
    finds them by phone must not learn the e-mail from the address (nor its history)."""
    anonymous = CustomerRef(email="anon@example.com", phone="+84 90 765 4321")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    events = [
        Envelope.new(
            ProfileUpdated(traits={"city": "Hue"}),
            customer=anonymous,
            occurred_at=at,
            received_at=at,
        )
        for _ in range(3)
    ]
    engine = make_engine(rapport_settings)
    create_schema(engine, "core_v1")
    PostgresStore(engine, "core_v1").apply_batch(
        [PositionedEvent("t", 0, n, e) for n, e in enumerate(events)]
    )
    with serving_api(engine) as api, httpx.Client(base_url=api.base, timeout=30) as web:
        signed = web.post(
            "/ui/sign-in", data={"key": key_of(api.analyst)}, headers={"Origin": api.base}
        )
        assert signed.status_code == 303
        found = web.get("/ui/customers", params={"q": "+84907654321"})
        address = found.headers["location"]
        assert address.startswith("/ui/customers/~") and "anon" not in address
        page = web.get(address)
        assert page.status_code == 200 and "anon@example.com" not in page.text
        assert "email:anon" not in page.text  # no link, form or data-src either
        assert web.get(address[:-3] + "AAA").status_code == 404  # a forged address opens nothing
        # An agent reads the customer in full, address included.
        agent = httpx.Client(base_url=api.base, timeout=30)
        agent.post("/ui/sign-in", data={"key": key_of(api.agent)}, headers={"Origin": api.base})
        assert (
            "email:anon@example.com"
            in agent.get("/ui/customers", params={"q": "+84907654321"}).headers["location"]
        )
        agent.close()
        # A link followed without the cookie asks to sign in, and signs no one out.
        bare = httpx.get(f"{api.base}{address}", timeout=30)
        assert bare.status_code == 303 and "set-cookie" not in bare.headers
    engine.dispose()

"""The customer-360 pages under /ui/: server-rendered HTML over the same queries and access
rules as the JSON API (readapi/app.py), outside its OpenAPI.

Signing in checks a pasted API key against the same key store; the key is then kept in an
HttpOnly, SameSite=Lax cookie and checked again on every request, so a revoked key stops
working as it does for the JSON API. Lax, not Strict: an agent follows a link to a customer
page from a ticket or a CRM record (another site), and every GET here only reads. Who sees
what:

- agent: customer pages (search, timeline, profile, scores, charts), in full;
- analyst: the same with personal data masked (readapi/masking.py), the value page
  (like /v1/top and /v1/segments) and the operator page; a customer's page address holds
  no personal identifier either (readapi/addresses.py);
- admin: the operator page only (lag, freshness, dead letters: the system, no customer's
  data; an admin still reads no customer).

POSTs (sign-in, sign-out) must come from a page of this site: SameSite=Lax keeps the
cookie off cross-site POSTs, and the Origin (else Referer) header must name this site,
which also stops a cross-site form signing a browser in under someone else's key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from projections.errors import CustomerNotFound, InvalidQuery
from projections.identity import IdentityRules
from projections.postgres import queries
from projections.postgres.identity import Customer
from projections.postgres.monthly import customer_activity
from projections.scores import ScoreParameters
from readapi import charts, masking
from readapi.addresses import PageAddresses
from readapi.errors import ReadApiError
from readapi.keys import ApiKeyRecord, ApiKeys, Role
from schemas import Channel

COOKIE = "rapport_key"
TIMELINE_PAGE = 25
TOP_N = 20
Operations = Callable[[], dict[str, Any]]
"""What the operator page shows: `rapport status --json` (infra.status.Status.to_json),
asked once per request (infra.bootstrap.operations_status keeps it a few seconds)."""

PAGE_HEADERS = {
    # Personal data: not kept by the browser's cache (no reading it back after sign-out).
    "Cache-Control": "no-store",
    # Only this site's script, styles and forms; never inside another site's frame.
    # Inline styles: the charts' legend colours.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_HERE = Path(__file__).parent
_STATIC = {"page.css": "text/css", "page.js": "text/javascript"}


class SignInRequired(ReadApiError):
    """No key in the cookie, or one that is unknown or revoked: back to the sign-in form."""

    def __init__(self, then: str) -> None:
        super().__init__("sign in")
        self.then = then


class PageForbidden(ReadApiError):
    """A signed-in key whose role may not see the page (403, said on a page)."""


def install(
    app: FastAPI,
    *,
    pseudonym: masking.Pseudonym,
    params: ScoreParameters,
    rules: IdentityRules,
    operations: Operations | None,
    addresses: PageAddresses,
) -> None:
    """Add the pages to `app` (whose state holds `engine` and `keys`); `addresses` seals
    the customers' page addresses for viewers who see them masked."""
    templates = Jinja2Templates(directory=_HERE / "templates")
    templates.env.filters["pretty"] = _pretty
    templates.env.filters["without_events"] = _without_events
    templates.env.globals["customer_url"] = customer_url

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        response = RedirectResponse(f"/ui/sign-in?{urlencode({'next': exc.then})}", 303)
        if COOKIE in request.cookies:  # a key that no longer works; none sent: keep any
            response.delete_cookie(COOKIE, path="/ui")
        return response

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"viewer": _signed_in(request), "title": "Not for this key", "message": str(exc)},
            status_code=403,
            headers=PAGE_HEADERS,
        )

    app.include_router(
        _router(
            templates,
            pseudonym=pseudonym,
            params=params,
            rules=rules,
            ops=operations,
            addresses=addresses,
        )
    )


def _signed_in(request: Request) -> ApiKeyRecord | None:
    key = request.cookies.get(COOKIE)
    keys: ApiKeys = request.app.state.keys
    return keys.holder(key) if key else None


def _viewer(request: Request) -> ApiKeyRecord:
    holder = _signed_in(request)
    if holder is None:
        query = f"?{request.url.query}" if request.url.query else ""
        raise SignInRequired(request.url.path + query)
    return holder


Viewer = Annotated[ApiKeyRecord, Depends(_viewer)]


def _allow(viewer: ApiKeyRecord, *roles: Role) -> None:
    if viewer.role not in roles:
        needed = " or ".join(r.value for r in roles)
        raise PageForbidden(
            f"This page is for keys with role {needed}; "
            f"key {viewer.name!r} has role {viewer.role.value}."
        )


def _same_origin(request: Request) -> bool:
    """Whether a POST came from a page of this site (Origin, else Referer, names it)."""
    here = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == here
    referer = request.headers.get("referer", "")
    return referer == here or referer.startswith(here + "/")


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site."""
    if value and value.startswith("/ui/") and not value.startswith("//"):
        return value
    return "/ui/"


def customer_url(customer_id: str, **params: Any) -> str:
    """The customer page's address; `params` become the query (lists repeat)."""
    query = urlencode({k: v for k, v in params.items() if v}, doseq=True)
    return f"/ui/customers/{quote(customer_id, safe=':@')}" + (f"?{query}" if query else "")


def _without_events(part: Mapping[str, Any]) -> dict[str, Any]:
    """An explanation without its list of event ids (the page gives their count)."""
    return {k: v for k, v in part.items() if k != "event_ids"}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _router(
    templates: Jinja2Templates,
    *,
    pseudonym: masking.Pseudonym,
    params: ScoreParameters,
    rules: IdentityRules,
    ops: Operations | None,
    addresses: PageAddresses,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def address(viewer: ApiKeyRecord, customer_id: str) -> str:
        """The customer's page address as `viewer` may see it (readapi/addresses.py)."""
        return customer_id if viewer.role is Role.AGENT else addresses.sealed(customer_id)

    def page(
        request: Request, name: str, viewer: ApiKeyRecord | None, status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"viewer": viewer, **ctx}, status_code=status, headers=PAGE_HEADERS
        )

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", 303)

    @router.get("/ui")
    def ui() -> RedirectResponse:
        return RedirectResponse("/ui/", 303)

    @router.get("/ui/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", 404, media_type="text/plain")
        return FileResponse(_HERE / "static" / name, media_type=_STATIC[name])

    @router.get("/ui/sign-in")
    def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
        return page(request, "sign_in.html", None, then=_safe_next(next))

    @router.post("/ui/sign-in")
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        then = _safe_next(form.get("next", [""])[0])
        if not _same_origin(request):
            return page(request, "sign_in.html", None, 403, then=then, error=_CROSS_SITE)
        key = form.get("key", [""])[0].strip()
        keys: ApiKeys = request.app.state.keys
        holder = keys.holder(key) if key else None
        if holder is None:
            error = "That key is unknown or revoked." if key else "Paste an API key."
            return page(request, "sign_in.html", None, 401, then=then, error=error)
        response = RedirectResponse(then, 303)
        response.set_cookie(
            COOKIE,
            key,
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/ui/sign-out")
    def sign_out(request: Request) -> Response:
        if not _same_origin(request):
            return page(request, "error.html", None, 403, title="Refused", message=_CROSS_SITE)
        response = RedirectResponse("/ui/sign-in", 303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    @router.get("/ui/")
    def home(request: Request, viewer: Viewer) -> HTMLResponse:
        return page(request, "home.html", viewer)

    @router.get("/ui/customers")
    def search(request: Request, viewer: Viewer, q: str = "") -> Response:
        _allow(viewer, Role.AGENT, Role.ANALYST)
        if not q.strip():
            return page(request, "home.html", viewer, 400, q=q, error="Type an identifier.")
        try:
            with request.app.state.engine.connect() as conn:
                who = queries.resolve_customer(conn, q.strip(), rules)
        except CustomerNotFound:
            shown = q if viewer.role is Role.AGENT else "that identifier"
            error = f"No customer is known by {shown}."
            return page(request, "home.html", viewer, 404, q=q, error=error)
        return RedirectResponse(customer_url(address(viewer, who.customer_id)), 303)

    @router.get("/ui/customers/{customer_id:path}")
    def customer(
        request: Request,
        viewer: Viewer,
        customer_id: str,
        channel: Annotated[list[str] | None, Query()] = None,
        type: Annotated[list[str] | None, Query()] = None,
        cursor: str | None = None,
        explain: bool = False,
        part: Annotated[str | None, Query(pattern="^(rows|why)$")] = None,
    ) -> Response:
        """The customer page. `explain` adds why the scores are what they are (re-scoring
        the customer from its ledger: most of the page's time for a busy customer, so on
        demand). `part=rows` answers just the timeline rows ("More"), `part=why` just the
        explanation."""
        _allow(viewer, Role.AGENT, Role.ANALYST)
        masked = viewer.role is not Role.AGENT
        channels, types = channel or [], type or []
        try:
            wanted = addresses.customer(customer_id)
            if wanted is None:  # a sealed address that does not open
                raise CustomerNotFound(customer_id)
            with request.app.state.engine.connect() as conn:
                who = queries.resolve_customer(conn, wanted, rules)
                if part == "why":
                    why = _scores(conn, who, masked, pseudonym, params, rules, explain=True)
                    return page(request, "scores_why.html", viewer, lineage=_lineage(why))
                view: dict[str, Any] = {}
                if part != "rows":
                    view = _customer_view(
                        conn, who, masked, pseudonym, params, rules, explain=explain
                    )
                # Last: the timeline query sets planner options for the rest of the
                # transaction.
                timeline = queries.customer_timeline(
                    conn,
                    who.customer_id,
                    limit=TIMELINE_PAGE,
                    cursor=cursor,
                    channels=channels or None,
                    types=types or None,
                    newest_first=True,
                    rules=rules,
                )
        except CustomerNotFound:
            return page(
                request,
                "error.html",
                viewer,
                404,
                title="No such customer",
                message="No customer is known by that identifier.",
            )
        except InvalidQuery as bad:
            return page(request, "error.html", viewer, 400, title="Bad request", message=str(bad))
        rows = timeline.rows
        here = address(viewer, who.customer_id)
        if masked:
            rows = [masking.timeline_event(r, pseudonym) for r in rows]
        more = None
        if timeline.next_cursor:
            filters = {"channel": channels, "type": types, "cursor": timeline.next_cursor}
            more = {
                "href": customer_url(here, **filters) + "#timeline",
                "rows": customer_url(here, **filters, part="rows"),
            }
        ctx: dict[str, Any] = {"rows": rows, "more": more, "masked": masked}
        if part == "rows":
            return page(request, "timeline_rows.html", viewer, **ctx)
        return page(
            request,
            "customer.html",
            viewer,
            **ctx,
            **view,
            address=here,
            shown_id=masking.mask_key(who.customer_id, pseudonym) if masked else who.customer_id,
            channels=[c.value for c in Channel],
            chosen_channels=channels,
            chosen_types=types,
            continued=cursor is not None,
            first_page=customer_url(here, channel=channels, type=types),
            explained=customer_url(here, explain=1) + "#why",
            why=customer_url(here, part="why"),
        )

    @router.get("/ui/value")
    def value(
        request: Request,
        viewer: Viewer,
        by: Annotated[str, Query(pattern="^(clv|p_active|rfm|engagement|past_value)$")] = "clv",
    ) -> HTMLResponse:
        _allow(viewer, Role.ANALYST)
        with request.app.state.engine.connect() as conn:
            segments = queries.segments(conn)
            ranked = queries.top_customers(conn, by=by, n=TOP_N)
        # A customer known only by a personal identifier shows masked, and is linked by
        # its sealed address.
        top = [
            {**shown, "href": customer_url(address(viewer, row["customer_id"]))}
            for row, shown in zip(ranked, masking.ranked(ranked, pseudonym), strict=True)
        ]
        return page(
            request, "value.html", viewer, segments=segments, top=top, by=by, ranks=queries.TOP_BY
        )

    @router.get("/ui/operations")
    def operations(request: Request, viewer: Viewer) -> HTMLResponse:
        _allow(viewer, Role.ANALYST, Role.ADMIN)
        if ops is None:
            return page(request, "operations.html", viewer, report=None)
        try:
            report = operations_view(ops())
        except Exception as failed:  # the page says so rather than failing with a 500
            return page(request, "operations.html", viewer, report=None, failed=repr(failed))
        return page(request, "operations.html", viewer, report=report)

    return router


def operations_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """`rapport status --json` (infra.status.Status.to_json) as the operator page reads it:
    a part the status could not learn, or leaves out, shows as unknown rather than failing
    the page."""
    dead = report.get("dead_letters") or {}
    return {
        "services": report.get("services") or [],
        "lag": {
            "total": report.get("lag"),
            "partitions": [
                {"topic": report.get("topic"), **p} for p in report.get("partitions") or []
            ],
        },
        "freshness_s": report.get("freshness_s"),
        "dead_letters": {
            "total": dead.get("total"),
            "by_reason": dead.get("by_reason") or {},
            "latest": dead.get("latest") or [],
        },
        "active_version": report.get("active_version"),
        "workers": report.get("workers") or [],
        "last_error": report.get("last_error"),
    }


_CROSS_SITE = "This form must be sent from a page of this site (Origin or Referer header)."


def _scores(
    conn: sa.Connection,
    who: Customer,
    masked: bool,
    pseudonym: masking.Pseudonym,
    params: ScoreParameters,
    rules: IdentityRules,
    *,
    explain: bool,
) -> dict[str, Any]:
    """The customer's scores now, masked for a reader who may not see identifiers."""
    scores = queries.customer_scores(
        conn, who.customer_id, as_of=datetime.now(UTC), explain=explain, params=params, rules=rules
    )
    return masking.customer_document(scores, pseudonym) if masked else scores


def _lineage(scores: dict[str, Any]) -> dict[str, Any]:
    """Why the scores are what they are: each score's inputs and events, and its place in
    the base (RFM quintiles, tier cut-offs) as last ranked."""
    return {
        **(scores.get("lineage") or {}),
        **{
            f"{name} (ranked in the base)": part
            for name, part in (scores.get("base_lineage") or {}).items()
            if isinstance(part, dict)
        },
    }


def _customer_view(
    conn: sa.Connection,
    who: Customer,
    masked: bool,
    pseudonym: masking.Pseudonym,
    params: ScoreParameters,
    rules: IdentityRules,
    *,
    explain: bool,
) -> dict[str, Any]:
    """Profile, scores and the charts of one customer; with `explain`, the scores are
    re-scored from history once, and that one read also gives their explanation."""
    profile = queries.customer_profile(conn, who.customer_id, rules)
    scores = _scores(conn, who, masked, pseudonym, params, rules, explain=explain)
    activity = customer_activity(conn, who)
    if masked:
        profile = masking.profile(profile, pseudonym)
    months = [m.strftime("%Y-%m") for m in activity.months()]
    by_channel = activity.by_channel()
    currency = activity.main_currency()
    figures: list[dict[str, Any]] = [
        {
            "id": "chart-channels",
            "title": "Touchpoints per month by channel",
            "svg": Markup(
                charts.stacked_bar_chart("Touchpoints per month by channel", months, by_channel)
            ),
            "columns": list(by_channel),
            "rows": [(m, [by_channel[c][i] for c in by_channel]) for i, m in enumerate(months)],
        }
    ]
    if currency is not None:
        counts, values = activity.purchase_series(currency)
        figures += [
            {
                "id": "chart-purchases",
                "title": "Purchases per month",
                "svg": Markup(charts.bar_chart("Purchases per month", months, counts)),
                "columns": ["purchases"],
                "rows": [(m, [counts[i]]) for i, m in enumerate(months)],
            },
            {
                "id": "chart-value",
                "title": f"Net value per month ({currency})",
                "svg": Markup(
                    charts.line_chart(
                        f"Net value per month in {currency}",
                        months,
                        [float(v) for v in values],
                        f" {currency}",
                    )
                ),
                "columns": [currency],
                "rows": [(m, [f"{values[i]:.2f}"]) for i, m in enumerate(months)],
            },
        ]
    return {
        "profile": profile,
        "scores": {k: v for k, v in scores.items() if k not in _NOT_SCORES},
        "lineage": _lineage(scores) if explain else None,
        "base": scores.get("base"),
        "figures": figures,
        "types": activity.types(),
    }


# Shown apart from the scores table (or not at all: the customer is in the heading).
_NOT_SCORES = {"customer_id", "base", "lineage", "base_lineage"}

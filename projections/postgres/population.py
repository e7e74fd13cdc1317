"""The population scorer: every customer's scores, RFM and tier, kept current without a refresh.

Scores that rank a customer against the base (RFM quintiles, value tiers) and lists over
the base (`top`, `segments`) need every customer's scores at one as-of. The population is
scored as of a day (its end, inclusive: the as-of semantics of a bare date), today unless
configured, and one cycle (`PopulationScorer.run_once`), run by the worker every few
seconds, keeps it so in one transaction:

1. Customers whose keys changed since the last cycle are rescored from their score state
   (projections/score_state.py), the ledger where the state cannot tell. A change is a
   profile row or an identity node written by a later transaction (`changed_xid`, stamped
   by the worker's batch); the rows of customers a merge or split reshaped go too (a row
   names its keys).
2. When the day turns, rows of an older as-of are rescored, a chunk per cycle.
3. If anything changed, the base is ranked again in SQL over the rows (RFM per currency,
   the tiers' cut-offs), only rows whose rank moved are written, and the segments and the
   ranking's lineage (`score_bases`) are rewritten.
4. The contact-policy violations of every customer whose keys changed are judged again
   (projections/postgres/contact_policy.py): a late opt-out or a merge changes them; a
   new day does not.

Readers see one cycle's result or the one before it, never a half-ranked base. One cycle
runs at a time per version (an advisory lock): several workers share one scorer's work.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg2.extras import execute_values
from sqlalchemy.dialects.postgresql import insert

from projections.contact_policy import DEFAULT_CONTACT_RULES, ContactRules
from projections.errors import ProjectionError, ScoringInputError
from projections.postgres import views
from projections.postgres.bulk import json_text
from projections.postgres.checkpoints import CHECKPOINT_EVERY, extend_checkpoints
from projections.postgres.contact_policy import rewrite_violations
from projections.postgres.history import customer_history
from projections.postgres.tables import Tables, build_tables
from projections.query_time import END_OF_DAY
from projections.score_state import (
    ScoreState,
    combined,
    current_scores,
    ranking_measures,
    refunded_orders,
)
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters, score_customer
from projections.value import CustomerValue, tier_of

log = logging.getLogger("rapport.population")

_LOCK = 0x5C0E5  # pg_try_advisory_xact_lock(_LOCK, hashtext(schema))
_CUSTOMER = "customer:"
_DAY = timedelta(days=1)


def population_as_of(day: date) -> datetime:
    """The as-of of a population scored on `day`: the end of that day, inclusive."""
    return datetime.combine(day, END_OF_DAY, UTC)


@dataclass(frozen=True)
class CycleReport:
    as_of: datetime
    rescored: int = 0  # customers whose row was written
    stale: int = 0  # rows of an older as-of still waiting after this cycle
    ranked: bool = False
    unscorable: int = 0
    seconds: float = 0.0
    skipped: str | None = None  # why nothing ran (another scorer, no version yet)


class PopulationScorer:
    """Runs cycles on one version (`schema`), or on the active one (None)."""

    def __init__(
        self,
        engine: sa.Engine,
        schema: str | None = None,
        *,
        params: ScoreParameters = DEFAULT_PARAMETERS,
        as_of_day: date | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        stale_chunk: int = 5000,
        contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
    ) -> None:
        self.engine = engine
        self.contact_rules = contact_rules
        self.schema = schema
        self.params = params
        self.as_of_day = as_of_day  # fixed day (tests, historic data); None: today
        self.today = today
        self.stale_chunk = stale_chunk

    def target(self) -> datetime:
        return population_as_of(self.as_of_day or self.today())

    def run_once(self, *, everyone: bool = False, as_of: datetime | None = None) -> CycleReport:
        """One cycle (module docstring). `everyone` rescores every customer at once
        (`rapport refresh-scores`: after a parameter change, or a version built before)."""
        started = time.monotonic()
        as_of = as_of or self.target()
        with self.engine.begin() as conn:
            schema = self.schema or views.active_schema(conn)
            if schema is None:
                return CycleReport(as_of, skipped="no projection version yet")
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:lock, hashtext(:schema))"),
                {"lock": _LOCK, "schema": schema},
            ).scalar_one()
            if not got:
                return CycleReport(as_of, skipped="another scorer is running on this version")
            cycle = _Cycle(conn, build_tables(schema), self.params, as_of, self.contact_rules)
            report = cycle.run(everyone, self.stale_chunk)
        return replace(report, seconds=time.monotonic() - started)


class _Cycle:
    def __init__(
        self,
        conn: sa.Connection,
        tables: Tables,
        params: ScoreParameters,
        as_of: datetime,
        contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
    ) -> None:
        self.conn = conn
        self.contact_rules = contact_rules
        self.t = tables
        self.params = params
        self.as_of = as_of
        self.unscorable: dict[str, str] = {}
        s = f'"{tables.schema}"'
        # The version's tables by name, for the statements below ({scores} and the like).
        self.names = {
            name: f"{s}.{name}"
            for name in (
                "customers",
                "identity_nodes",
                "identity_keys",
                "score_state",
                "score_orders",
                "scores",
                "score_bases",
                "score_segments",
                "population",
                "contact_violations",
            )
        }

    def _sql(self, text: str, **values: Any) -> Any:  # a CursorResult
        return self.conn.execute(sa.text(text.format(**self.names)), values)

    def run(self, everyone: bool, stale_chunk: int) -> CycleReport:
        # Every transaction below this id has ended: what they wrote is visible from here
        # on, and what later ones write carries a later id (read again next cycle).
        horizon = self._sql("SELECT txid_snapshot_xmin(txid_current_snapshot())").scalar_one()
        mark = self._sql(
            "SELECT changed_below_xid, as_of, ranked_at FROM {population} WHERE id = 1"
        ).first()
        if everyone or mark is None:
            self._sql("DELETE FROM {scores}")
            self._sql("DELETE FROM {contact_violations}")
            customers = self._customers_of(
                self._sql("SELECT customer_id FROM {customers}").scalars().all()
            )
            changed_customers = set(customers)
        else:
            changed = self._changed_keys(mark.changed_below_xid)
            # A merge, split or rename ends rows: those that hold a changed key go, and
            # every customer their keys belong to now is scored again.
            keys = set(changed)
            for held in self._sql(
                "DELETE FROM {scores} WHERE keys && CAST(:keys AS text[]) RETURNING keys",
                keys=changed,
            ).scalars():
                keys.update(held)
            customers = self._customers_of(sorted(keys))
            changed_customers = set(customers)
            # A new day changes scores, not what a touchpoint broke: these are rescored only.
            customers.update(
                self._sql(
                    "SELECT customer_id FROM {scores} WHERE as_of <> :as_of "
                    "ORDER BY customer_id LIMIT :n",
                    as_of=self.as_of,
                    n=stale_chunk,
                ).scalars()
            )
        rescored = self._rescore(sorted(customers), changed_customers)
        stale = self._sql(
            "SELECT count(*) FROM {scores} WHERE as_of <> :as_of", as_of=self.as_of
        ).scalar_one()
        # ranked_at NULL: rows left the population (an erasure) and the others' base-relative
        # ranks must be computed again without them.
        ranked = bool(customers) or mark is None or mark.as_of != self.as_of or not mark.ranked_at
        if ranked:
            self._rank()
        self._sql(
            """INSERT INTO {population} (id, as_of, changed_below_xid, ranked_at, customers,
                                         unscorable)
               VALUES (1, :as_of, :horizon, now(), (SELECT count(*) FROM {scores}),
                       CAST(:unscorable AS jsonb))
               ON CONFLICT (id) DO UPDATE SET
                   as_of = EXCLUDED.as_of, changed_below_xid = EXCLUDED.changed_below_xid,
                   ranked_at = CASE WHEN :ranked THEN EXCLUDED.ranked_at
                                    ELSE {population}.ranked_at END,
                   customers = EXCLUDED.customers,
                   -- those scored again this cycle answer for themselves; the rest stay
                   unscorable = CASE WHEN :everyone THEN EXCLUDED.unscorable
                                     ELSE ({population}.unscorable - CAST(:scored AS text[]))
                                          || EXCLUDED.unscorable END""",
            as_of=self.as_of,
            horizon=horizon,
            unscorable=orjson.dumps(self.unscorable).decode(),
            ranked=ranked,
            everyone=everyone,
            scored=sorted(customers),
        )
        return CycleReport(self.as_of, rescored, stale, ranked, len(self.unscorable))

    # -- which customers ------------------------------------------------------------------

    def _changed_keys(self, since_xid: int) -> Any:  # list of keys
        """Keys with new events (their profile row was written) or whose identifier moved
        to another component, by transactions at or after `since_xid`."""
        return (
            self._sql(
                """SELECT customer_id FROM {customers} WHERE changed_xid >= :x
                   UNION
                   SELECT k.key FROM {identity_nodes} n JOIN {identity_keys} k ON k.node = n.node
                    WHERE n.changed_xid >= :x""",
                x=since_xid,
            )
            .scalars()
            .all()
        )

    def _customers_of(self, keys: Sequence[str]) -> set[str]:
        """The customers the keys resolve to now; visitors (a component without a customer
        id) are not customers. A key the graph does not know is a customer of its own."""
        if not keys:
            return set()
        return set(
            self._sql(
                """SELECT DISTINCT coalesce(n.customer_id, t.key)
                     FROM unnest(CAST(:keys AS text[])) t(key)
                     LEFT JOIN {identity_keys} k ON k.key = t.key
                     LEFT JOIN {identity_nodes} n ON n.node = k.node
                    WHERE k.key IS NULL
                       OR EXISTS (SELECT 1 FROM {identity_nodes} c
                                   WHERE c.node = :prefix || n.customer_id)""",
                keys=list(keys),
                prefix=_CUSTOMER,
            )
            .scalars()
            .all()
        )

    def _keys_of(self, customers: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        rows = self._sql(
            """SELECT n.customer_id, k.key
                 FROM {identity_nodes} n JOIN {identity_keys} k ON k.node = n.node
                WHERE n.customer_id = ANY(CAST(:c AS text[]))
                  AND EXISTS (SELECT 1 FROM {identity_nodes} c
                               WHERE c.node = :prefix || n.customer_id)
               UNION ALL
               SELECT p.customer_id, p.customer_id FROM {customers} p
                WHERE p.customer_id = ANY(CAST(:c AS text[]))
                  AND NOT EXISTS (SELECT 1 FROM {identity_keys} k WHERE k.key = p.customer_id)
               ORDER BY 1, 2""",
            c=list(customers),
            prefix=_CUSTOMER,
        )
        for customer_id, key in rows:
            found[customer_id].append(key)
        return found

    # -- one customer's row ---------------------------------------------------------------

    def _rescore(self, customers: Sequence[str], changed: set[str]) -> int:
        """Write the rows of `customers` (replacing theirs) and judge again the violations
        of those among them whose keys `changed`; return how many rows were written (a
        customer with no key left, or unscorable, has none)."""
        written = 0
        for start in range(0, len(customers), 2000):
            chunk = customers[start : start + 2000]
            keys_of = self._keys_of(chunk)
            # The same change that rescores a customer can change what its touchpoints
            # broke (a late opt-out, a merge): its violations are judged again with it.
            judged = [c for c in chunk if c in changed]
            judged_keys = {c: keys_of[c] for c in judged if c in keys_of}
            rewrite_violations(self.conn, self.t, judged, judged_keys, self.contact_rules)
            states = self._states([k for keys in keys_of.values() for k in keys])
            rows = []
            for customer_id in chunk:
                keys = keys_of.get(customer_id)
                if not keys:
                    continue
                row = self._row(customer_id, keys, states)
                if row is not None:
                    rows.append(row)
            self._sql("DELETE FROM {scores} WHERE customer_id = ANY(CAST(:c AS text[]))", c=chunk)
            self._insert_rows(rows)
            written += len(rows)
            events = dict(
                self._sql(
                    "SELECT customer_id, events FROM {customers} "
                    "WHERE customer_id = ANY(CAST(:keys AS text[]))",
                    keys=[k for keys in keys_of.values() for k in keys],
                ).all()
            )
            for customer_id, keys in keys_of.items():
                total = sum(events.get(k, 0) for k in keys)
                if total >= CHECKPOINT_EVERY:
                    extend_checkpoints(self.conn, self.t.schema, customer_id, keys, total)
        return written

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = [c.name for c in self.t.scores.columns]
        template = (
            "(" + ", ".join("%s::jsonb" if c == "other_currencies" else "%s" for c in columns) + ")"
        )
        cursor = self.conn.connection.cursor()
        try:  # psycopg2's VALUES pages: SQLAlchemy's executemany compiles every row apart
            execute_values(
                cursor,
                f'INSERT INTO "{self.t.schema}".scores ({", ".join(columns)}) VALUES %s',
                [
                    tuple(
                        json_text(row.get(c)) if c == "other_currencies" else row.get(c)
                        for c in columns
                    )
                    for row in rows
                ],
                template=template,
                page_size=1000,
            )
        finally:
            cursor.close()

    def _states(self, keys: list[str]) -> dict[str, ScoreState]:
        states = {
            key: ScoreState.from_json(orjson.loads(doc))
            for key, doc in self._sql(
                "SELECT customer_id, state::text FROM {score_state} "
                "WHERE customer_id = ANY(CAST(:keys AS text[]))",
                keys=keys,
            )
        }
        refunding = [key for key, state in states.items() if refunded_orders(state)]
        if refunding:
            for key, currency, order_id, at, event_id, amount, contribution in self._sql(
                "SELECT customer_id, currency, order_id, at, event_id::text, amount, contribution "
                "FROM {score_orders} WHERE customer_id = ANY(CAST(:keys AS text[]))",
                keys=refunding,
            ):
                states[key].money[currency].remember_order(
                    order_id, (at, event_id, amount, contribution)
                )
        return states

    def _row(
        self, customer_id: str, keys: list[str], states: dict[str, ScoreState]
    ) -> dict[str, Any] | None:
        held = [states[k] for k in keys if k in states]
        state = held[0] if len(held) == 1 else combined(held)  # merge copies: only for several
        try:
            row = None
            if self.params == DEFAULT_PARAMETERS:  # what the worker folds the state with
                row = current_scores(state, customer_id, as_of=self.as_of)
            if row is None:
                row = self._from_ledger(customer_id, keys)
            else:
                row.update(ranking_measures(state))
        except ScoringInputError as refused:  # one odd customer never stops the base
            self.unscorable[customer_id] = str(refused)
            return None
        return {**row, "keys": keys}

    def _from_ledger(self, customer_id: str, keys: list[str]) -> dict[str, Any]:
        """Where the state cannot tell (module docstring of score_state), or other
        parameters than the state was folded with: the pure fold over the ledger."""
        history = customer_history(self.conn, self.t, customer_id, keys, as_of=self.as_of)
        scores = score_customer(history, as_of=self.as_of, params=self.params)
        rfm = scores.rfm_input
        last = None
        if rfm is not None:
            last = max(
                p.occurred_at
                for p in history.in_currency(rfm.currency).purchases
                if p.occurred_at <= self.as_of
            )
        return {
            **scores.to_row(),
            "rfm_last_purchase": last,
            "rfm_purchases": rfm.purchase_count if rfm else None,
            "rfm_spend": rfm.total_spend if rfm else None,
            "annual_headroom": scores.share_of_wallet.annual_headroom,
        }

    # -- the base -------------------------------------------------------------------------

    def _rank(self) -> None:
        self._rank_rfm()
        self._rank_tiers()
        self._rewrite_segments()

    def _rank_rfm(self) -> None:
        """projections/value/rfm.py's mid-rank quintiles, per currency, in one statement:
        score = 1 + floor(5 (2 below + equal) / 2n), below the customers strictly worse.
        Recency ranks by the last purchase's instant (the later, the better): at one as-of
        that is the order of days since it."""
        w = self.params.rfm_weights
        self._sql(
            """WITH measured AS (
                   SELECT customer_id,
                          count(*) OVER (PARTITION BY currency) AS n,
                          rank() OVER (PARTITION BY currency ORDER BY rfm_last_purchase) - 1
                              AS r_below,
                          count(*) OVER (PARTITION BY currency, rfm_last_purchase) AS r_equal,
                          rank() OVER (PARTITION BY currency ORDER BY rfm_purchases) - 1
                              AS f_below,
                          count(*) OVER (PARTITION BY currency, rfm_purchases) AS f_equal,
                          rank() OVER (PARTITION BY currency ORDER BY rfm_spend) - 1 AS m_below,
                          count(*) OVER (PARTITION BY currency, rfm_spend) AS m_equal
                     FROM {scores} WHERE rfm_purchases IS NOT NULL),
               scored AS (
                   SELECT customer_id,
                          1 + least(4, 5 * (2 * r_below + r_equal) / (2 * n)) AS r,
                          1 + least(4, 5 * (2 * f_below + f_equal) / (2 * n)) AS f,
                          1 + least(4, 5 * (2 * m_below + m_equal) / (2 * n)) AS m
                     FROM measured)
               UPDATE {scores} s
                  SET rfm_recency = q.r, rfm_frequency = q.f, rfm_monetary = q.m,
                      rfm_score = CAST(:wr AS float8) * q.r + CAST(:wf AS float8) * q.f
                                  + CAST(:wm AS float8) * q.m
                 FROM scored q
                WHERE s.customer_id = q.customer_id
                  AND (s.rfm_recency, s.rfm_frequency, s.rfm_monetary, s.rfm_score IS NULL)
                      IS DISTINCT FROM (q.r, q.f, q.m, false)""",
            wr=w.recency,
            wf=w.frequency,
            wm=w.monetary,
        )
        self._sql("DELETE FROM {score_bases} WHERE kind = 'rfm'")
        ranges: dict[str, dict[str, list[list[Any]]]] = defaultdict(dict)
        sizes: dict[str, int] = {}
        rows = self._sql(
            """SELECT currency, rfm_recency, min(rfm_last_purchase), max(rfm_last_purchase),
                      rfm_frequency, min(rfm_purchases), max(rfm_purchases),
                      rfm_monetary, min(rfm_spend), max(rfm_spend), count(*)
                 FROM {scores} WHERE rfm_purchases IS NOT NULL
                GROUP BY GROUPING SETS ((currency, rfm_recency), (currency, rfm_frequency),
                               (currency, rfm_monetary), (currency))"""
        ).all()
        for row in rows:
            currency = row[0]
            per = ranges[currency]
            if row[1] is not None:  # recency in days at the as-of: the latest is the fewest
                days = [(self.as_of - at) / _DAY for at in (row[3], row[2])]
                per.setdefault("recency_days", []).append([row[1], *days])
            elif row[4] is not None:
                per.setdefault("frequency", []).append([row[4], row[5], row[6]])
            elif row[7] is not None:
                per.setdefault("monetary", []).append([row[7], str(row[8]), str(row[9])])
            else:
                sizes[currency] = row[10]
        bases = []
        for currency, per in ranges.items():
            quintiles = {m: sorted(per.get(m, []), reverse=True) for m in _RFM_MEASURES}
            lineage = {
                "base_size": sizes[currency],
                "weights": [w.recency, w.frequency, w.monetary],
                "quintiles": quintiles,
            }
            bases.append(
                {"kind": "rfm", "currency": currency, "as_of": self.as_of, "lineage": lineage}
            )
        if bases:
            self.conn.execute(insert(self.t.score_bases), bases)

    def _rank_tiers(self) -> None:
        """projections/value/tiers.py's rule over the rows: the two cut-offs, then the tier
        of every row whose tier moved (or that is new), each reason worded by `tier_of`."""
        rule = self.params.tiers
        size = self._sql("SELECT count(*) FROM {scores}").scalar_one()
        valuable = self._top_cutoff(
            "past_value", "net_contribution >= 0", rule.most_valuable_fraction, size
        )
        not_valuable = (
            "TRUE" if valuable is None else "NOT (past_value > 0 AND past_value >= :valuable)"
        )
        growable = self._top_cutoff(
            "clv",
            f"net_contribution >= 0 AND {not_valuable}",
            rule.growable_fraction,
            size,
            valuable=valuable,
        )
        # Which rule holds decides the tier and the words of its reason (tier_of's first
        # word): a row is worded again when that changes, or when it is new (no reason).
        moved = self._sql(
            """WITH ruled AS (
                   SELECT customer_id,
                          CASE WHEN net_contribution < 0 THEN 'net'
                               WHEN CAST(:valuable AS float8) IS NOT NULL AND past_value > 0
                                    AND past_value >= :valuable THEN 'past'
                               WHEN CAST(:growable AS float8) IS NOT NULL AND clv > 0
                                    AND clv >= :growable THEN 'lifetime'
                               WHEN share_of_wallet IS NOT NULL AND share_of_wallet < :share
                                    AND annual_headroom > :headroom THEN 'share'
                               ELSE 'none' END AS rule
                     FROM {scores})
               SELECT s.customer_id, s.past_value, s.clv, s.net_contribution,
                      s.share_of_wallet, s.annual_headroom
                 FROM {scores} s JOIN ruled r USING (customer_id)
                WHERE s.tier_reason IS NULL OR split_part(s.tier_reason, ' ', 1) <> r.rule""",
            valuable=valuable,
            growable=growable,
            share=rule.growable_share_below,
            headroom=rule.growable_min_annual_headroom,
        ).all()
        updates = []
        for customer_id, past, clv, contribution, share, headroom in moved:
            value = CustomerValue(
                customer_id, self.as_of, past, clv, contribution, share, headroom or 0.0
            )
            tier, reason = tier_of(value, rule, valuable, growable)
            updates.append((customer_id, tier.value, reason))
        if updates:
            cursor = self.conn.connection.cursor()
            try:  # one statement per 10,000 rows: a whole base can move at once
                execute_values(
                    cursor,
                    f'UPDATE "{self.t.schema}".scores s SET tier = v.tier, '
                    "tier_reason = v.reason FROM (VALUES %s) AS v (customer_id, tier, reason) "
                    "WHERE s.customer_id = v.customer_id",
                    updates,
                    page_size=10_000,
                )
            finally:
                cursor.close()
        self._sql("DELETE FROM {score_bases} WHERE kind = 'tiers'")
        self.conn.execute(
            insert(self.t.score_bases),
            [
                {
                    "kind": "tiers",
                    "currency": "",
                    "as_of": self.as_of,
                    "lineage": {
                        "base_size": size,
                        "most_valuable_cutoff": valuable,
                        "growable_cutoff": growable,
                        "rule": {
                            "most_valuable_fraction": rule.most_valuable_fraction,
                            "growable_fraction": rule.growable_fraction,
                            "growable_share_below": rule.growable_share_below,
                            "growable_min_annual_headroom": rule.growable_min_annual_headroom,
                        },
                    },
                }
            ],
        )

    def _top_cutoff(
        self, column: str, where: str, fraction: float, size: int, **values: Any
    ) -> float | None:
        """The k-th highest positive value, k = ceil(fraction x size), or the lowest
        positive one when fewer (tiers.py's `_top_cutoff`)."""
        k = math.ceil(fraction * size - 1e-9)
        if k <= 0:
            return None
        found: float | None = self._sql(
            f"SELECT min({column}) FROM (SELECT {column} FROM {{scores}} "
            f"WHERE {where} AND {column} > 0 ORDER BY {column} DESC LIMIT :k) top",
            k=k,
            **values,
        ).scalar_one()
        return found

    def _rewrite_segments(self) -> None:
        self._sql("DELETE FROM {score_segments}")
        self._sql(
            """INSERT INTO {score_segments}
               SELECT CASE WHEN GROUPING(tier) = 0 THEN 'tier' ELSE 'rfm_band' END,
                      coalesce(tier, floor(rfm_score)::int::text, ''),
                      count(*), avg(clv), avg(p_active), sum(past_value), avg(engagement)
                 FROM {scores}
                GROUP BY GROUPING SETS ((tier), (floor(rfm_score)))
               HAVING GROUPING(tier) = 0 OR floor(rfm_score) IS NOT NULL"""
        )


_RFM_MEASURES = ("recency_days", "frequency", "monetary")


def rank_population(
    conn: sa.Connection,
    schema: str,
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
) -> None:
    """Rank the rows of `schema` as a cycle does (RFM, tiers, segments, lineage), inside
    the caller's transaction: `rapport bench` times it over a large population."""
    _Cycle(conn, build_tables(schema), params, as_of)._rank()


def population_status(conn: sa.Connection, schema: str) -> dict[str, Any] | None:
    """How current the population of `schema` is: its as-of, when it was last ranked, its
    customers, the keys changed since the scorer last read (`pending_keys`, 0 when every
    committed change is scored) and the rows still of an older as-of (`stale`); None
    before the first cycle."""
    s = f'"{schema}"'
    row = (
        conn.execute(
            sa.text(
                f"""SELECT p.as_of, p.ranked_at, p.customers,
                           (SELECT count(*) FROM {s}.customers c
                             WHERE c.changed_xid >= p.changed_below_xid)
                         + (SELECT count(*) FROM {s}.identity_nodes n
                             WHERE n.changed_xid >= p.changed_below_xid) AS pending_keys,
                           (SELECT count(*) FROM {s}.scores r WHERE r.as_of <> p.as_of) AS stale,
                           (SELECT count(*) FROM jsonb_object_keys(p.unscorable)) AS unscorable
                      FROM {s}.population p"""
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def score_population(
    engine: sa.Engine,
    schema: str | None,
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
    contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
) -> int:
    """Every customer scored and ranked as of `as_of` at once (`rapport refresh-scores`,
    a rebuilt version's first population); return the customers scored."""
    scorer = PopulationScorer(engine, schema, params=params, contact_rules=contact_rules)
    report = scorer.run_once(everyone=True, as_of=as_of)
    if report.skipped:
        raise ProjectionError(f"scores not refreshed: {report.skipped}")
    return report.rescored

"""Value tiers: most valuable (MVC), most growable (MGC), below zero (BZ) and the rest."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from projections.errors import ScoringInputError
from projections.lineage import frozen_inputs
from projections.value.common import require_one_base


class ValueTier(StrEnum):
    MOST_VALUABLE = "MVC"
    MOST_GROWABLE = "MGC"
    BELOW_ZERO = "BZ"
    OTHER = "other"


@dataclass(frozen=True)
class CustomerValue:
    """What the tiers are decided from, per customer, all measured at `as_of`."""

    customer_id: str
    as_of: datetime
    past_value: float
    lifetime_value: float
    net_contribution: Decimal
    share_of_wallet: float | None = None
    annual_wallet_headroom: float = 0.0


@dataclass(frozen=True)
class TierRule:
    """Parameters of `assign_value_tiers`; fractions are of the whole customer base."""

    most_valuable_fraction: float = 0.2
    growable_fraction: float = 0.2
    growable_share_below: float = 0.5
    growable_min_annual_headroom: float = 0.0

    def __post_init__(self) -> None:
        for name in ("most_valuable_fraction", "growable_fraction", "growable_share_below"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ScoringInputError(f"TierRule.{name}={value}: must be within [0, 1]")


DEFAULT_TIER_RULE = TierRule()


@dataclass(frozen=True)
class TierAssignment:
    customer_id: str
    tier: ValueTier
    reason: str
    inputs: Mapping[str, object]


def assign_value_tiers(
    customers: Iterable[CustomerValue], *, rule: TierRule = DEFAULT_TIER_RULE
) -> dict[str, TierAssignment]:
    """MVC / MGC / BZ / other across a customer base of N, first rule that holds wins:

    1. BZ, below zero: net contribution < 0 (they cost more than they returned).
    2. MVC, most valuable: past value > 0 and at least the k-th highest past value among
       the customers not BZ, k = ceil(most_valuable_fraction x N). Everyone equal to that
       cut-off is in, so ties never depend on order.
    3. MGC, most growable (potential beyond actual value), either
       - lifetime value > 0 and at least the k'-th highest lifetime value among the
         customers neither BZ nor MVC, k' = ceil(growable_fraction x N), ties in; or
       - a stated share of wallet below growable_share_below with annual wallet headroom
         above growable_min_annual_headroom (they buy most of the category elsewhere).
    4. other.
    """
    base = list(customers)
    require_one_base("tier", [(c.customer_id, c.as_of) for c in base])
    below_zero = {c.customer_id for c in base if c.net_contribution < 0}
    valuable_cutoff = _top_cutoff(
        [c.past_value for c in base if c.customer_id not in below_zero],
        rule.most_valuable_fraction,
        len(base),
    )
    most_valuable = {
        c.customer_id
        for c in base
        if c.customer_id not in below_zero
        and valuable_cutoff is not None
        and c.past_value > 0
        and c.past_value >= valuable_cutoff
    }
    settled = below_zero | most_valuable
    growable_cutoff = _top_cutoff(
        [c.lifetime_value for c in base if c.customer_id not in settled],
        rule.growable_fraction,
        len(base),
    )
    assignments: dict[str, TierAssignment] = {}
    for c in base:
        tier, reason = tier_of(c, rule, valuable_cutoff, growable_cutoff)
        assignments[c.customer_id] = TierAssignment(
            customer_id=c.customer_id,
            tier=tier,
            reason=reason,
            inputs=frozen_inputs(
                as_of=c.as_of,
                past_value=c.past_value,
                lifetime_value=c.lifetime_value,
                net_contribution=c.net_contribution,
                share_of_wallet=c.share_of_wallet,
                annual_wallet_headroom=c.annual_wallet_headroom,
                base_size=len(base),
                most_valuable_cutoff=valuable_cutoff,
                growable_cutoff=growable_cutoff,
                rule=rule,
            ),
        )
    return assignments


def tier_of(
    c: CustomerValue,
    rule: TierRule,
    most_valuable_cutoff: float | None,
    growable_cutoff: float | None,
) -> tuple[ValueTier, str]:
    """The tier of one customer, with its reason, given the base's two cut-offs (the
    population scorer ranks in SQL, then words each reason here)."""
    if c.net_contribution < 0:
        return ValueTier.BELOW_ZERO, f"net contribution {c.net_contribution:.2f} < 0"
    if (
        most_valuable_cutoff is not None
        and c.past_value > 0
        and c.past_value >= most_valuable_cutoff
    ):
        return ValueTier.MOST_VALUABLE, f"past value {c.past_value:.2f} in the top"
    if growable_cutoff is not None and c.lifetime_value > 0 and c.lifetime_value >= growable_cutoff:
        return ValueTier.MOST_GROWABLE, f"lifetime value {c.lifetime_value:.2f} in the top"
    if (
        c.share_of_wallet is not None
        and c.share_of_wallet < rule.growable_share_below
        and c.annual_wallet_headroom > rule.growable_min_annual_headroom
    ):
        return (
            ValueTier.MOST_GROWABLE,
            f"share of wallet {c.share_of_wallet:.2f}, headroom "
            f"{c.annual_wallet_headroom:.2f} a year",
        )
    return ValueTier.OTHER, "none of the tier rules holds"


def _top_cutoff(values: list[float], fraction: float, base_size: int) -> float | None:
    """The k-th highest positive value, k = ceil(fraction x base_size); None when k is 0
    or no value is positive. The epsilon keeps 0.7 x 10 from rounding up to 8."""
    k = math.ceil(fraction * base_size - 1e-9)
    positive = sorted((v for v in values if v > 0), reverse=True)
    if k <= 0 or not positive:
        return None
    return positive[min(k, len(positive)) - 1]

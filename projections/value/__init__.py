"""Customer value scores: the pure core of the scores read model. No I/O, no clock.

Every function that depends on "now" takes `as_of` (an aware datetime), ignores whatever
happened after it, and returns a result that carries its lineage: `inputs` (the as-of
time, the parameters and the intermediate values it was computed from) and `event_ids`
(the events that fed it, sorted). The formulas are those of ../shared/DOMAIN.md; each
function's docstring states the exact rule.

Numbers. Money arrives as Decimal, as in the contract, and plain sums of money stay
Decimal: net contribution decides the below-zero tier at exactly 0, where float rounding
could flip it. Estimates are floats: means, rates, probabilities and compounding with
fractional exponents have no exact decimal value anyway, and the BTYD tools these numbers
are compared with and fed to (lifetimes, PyMC-Marketing) compute in floats.

Time. A year is 365.25 days. Purchase periods (the BTYD summary, the CLV purchase rate)
are calendar days, or blocks of `PeriodRule.days` days, in `PeriodRule.timezone`.

Money from different currencies is never added up: functions that would do so raise
MixedCurrencies, so convert upstream.
"""

from __future__ import annotations

from projections.value.activity import ActivityProbability, probability_active
from projections.value.common import DAYS_PER_YEAR
from projections.value.contribution import NetContribution, ServiceCostRule, net_contribution
from projections.value.inputs import (
    Purchase,
    Refund,
    ServiceTicket,
    StatedCategorySpend,
    purchase_from_event,
    refund_from_event,
    stated_spend_from_event,
    ticket_from_event,
)
from projections.value.lifetime import (
    LifetimeValue,
    LifetimeValueParameters,
    MarginRule,
    PastValue,
    PastValueParameters,
    customer_lifetime_value,
    past_customer_value,
)
from projections.value.rfm import (
    EQUAL_RFM_WEIGHTS,
    RfmInput,
    RfmScore,
    RfmWeights,
    rfm_input,
    score_rfm,
)
from projections.value.summary import DAILY, PeriodRule, PurchaseSummary, summarize_purchases
from projections.value.tiers import (
    DEFAULT_TIER_RULE,
    CustomerValue,
    TierAssignment,
    TierRule,
    ValueTier,
    assign_value_tiers,
    tier_of,
)
from projections.value.wallet import CategoryShare, ShareOfWallet, share_of_wallet

__all__ = [
    "DAILY",
    "DAYS_PER_YEAR",
    "DEFAULT_TIER_RULE",
    "EQUAL_RFM_WEIGHTS",
    "ActivityProbability",
    "CategoryShare",
    "CustomerValue",
    "LifetimeValue",
    "LifetimeValueParameters",
    "MarginRule",
    "NetContribution",
    "PastValue",
    "PastValueParameters",
    "PeriodRule",
    "Purchase",
    "PurchaseSummary",
    "Refund",
    "RfmInput",
    "RfmScore",
    "RfmWeights",
    "ServiceCostRule",
    "ServiceTicket",
    "ShareOfWallet",
    "StatedCategorySpend",
    "TierAssignment",
    "TierRule",
    "ValueTier",
    "assign_value_tiers",
    "customer_lifetime_value",
    "net_contribution",
    "past_customer_value",
    "probability_active",
    "purchase_from_event",
    "refund_from_event",
    "rfm_input",
    "score_rfm",
    "share_of_wallet",
    "stated_spend_from_event",
    "summarize_purchases",
    "ticket_from_event",
    "tier_of",
]

"""P(Active) = T^n: the probability that a non-contractual customer is still active."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from projections.errors import ScoringInputError
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.inputs import Purchase


@dataclass(frozen=True)
class ActivityProbability:
    value: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def activity_ratio(acquisition: datetime, last_purchase: datetime, as_of: datetime) -> float:
    """T_ratio = (last purchase - acquisition) / (as_of - acquisition); 1.0 when both
    are the same instant (0/0). P(Active) = T_ratio ** purchases."""
    window = as_of - acquisition
    return 1.0 if window == timedelta(0) else (last_purchase - acquisition) / window


def probability_active(
    purchases: Iterable[Purchase], *, as_of: datetime, acquired_at: datetime | None = None
) -> ActivityProbability | None:
    """P(Active) = T_ratio ** n, the probability a non-contractual customer is still active.

    T_ratio = (last purchase - acquisition) / (as_of - acquisition), on exact instants;
    n = the number of purchases from acquisition to as_of, the first one included and
    each purchase counted (two on one day are two). Acquisition is `acquired_at` when
    known (e.g. sign-up), else the first purchase.

    Edge cases:
    - no purchase by as_of: None, there is nothing to judge activity by;
    - a single purchase that is also the acquisition, as_of later: T_ratio = 0, so 0.0
      (the formula reads one purchase as no evidence of activity since);
    - last purchase at as_of: T_ratio = 1, so 1.0;
    - acquisition at as_of (every purchase at that instant): 0/0, defined as 1.0.
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    if not observed:
        return None
    first = min(purchase.occurred_at for purchase in observed)
    last = max(purchase.occurred_at for purchase in observed)
    if acquired_at is not None:
        require_aware("acquired_at", acquired_at)
        if acquired_at > first:
            raise ScoringInputError(
                f"acquired_at={acquired_at.isoformat()} is after the first purchase "
                f"({first.isoformat()}); acquisition cannot follow it"
            )
    acquisition = acquired_at or first
    ratio = activity_ratio(acquisition, last, as_of)
    return ActivityProbability(
        value=ratio ** len(observed),
        inputs=frozen_inputs(
            as_of=as_of,
            acquired_at=acquisition,
            acquisition_from="acquired_at" if acquired_at is not None else "first purchase",
            last_purchase_at=last,
            time_ratio=ratio,
            purchases=len(observed),
            purchases_after_as_of=ignored,
        ),
        event_ids=source_event_ids(observed),
    )

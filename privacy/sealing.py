"""The producer's end: personal fields leave the process only sealed.

`Sealer.seal` is called by the SDK's `Publisher.encode` (so by the collector and the
importer too) on the verified wire bytes of each event. It refuses an event naming an
identifier of an erased customer (`SubjectErased`), moves the event's personal fields
into a box sealed with the data key of the event's subject, and picks a Kafka key that is
not personal (the customer id, or the subject's token instead of an e-mail address).

Keys are cached: only a subject the process has not seen costs a round trip to the key
store (`prepare` fetches a whole batch's in one). The set of suppressed identifiers is
cached too, re-read every `suppression_ttl_s`; an event that slips through in that window
is still refused by the worker's gate (`privacy.gate`), which reads the store itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import orjson

from privacy.crypto import DataKey, Tokens, seal_box
from privacy.keystore import KeyStore, SubjectErased
from projections.identity import DEFAULT_RULES, IdentityRules, evidence_of
from schemas import Envelope
from schemas.privacy import SEALED, split_personal

ERASURE_TYPES = frozenset({"privacy.erased"})
_MAX_CACHED_KEYS = 200_000


class Sealer:
    def __init__(
        self,
        keys: KeyStore,
        pepper: bytes,
        *,
        rules: IdentityRules = DEFAULT_RULES,
        suppression_ttl_s: float = 5.0,
    ) -> None:
        self.keys = keys
        self.pepper = pepper
        self.rules = rules
        self.suppression_ttl_s = suppression_ttl_s
        self._keys: dict[str, DataKey] = {}  # by partition key, as the event states it
        self.token = Tokens(self.pepper, most=_MAX_CACHED_KEYS)
        self._suppressed: set[str] = set()
        self._suppressed_read = float("-inf")

    def prepare(self, events: Iterable[Envelope]) -> None:
        """Fetch (or create) the keys of `events`' subjects in one round trip."""
        missing = {
            e.customer.partition_key
            for e in events
            if e.type not in ERASURE_TYPES and e.customer.partition_key not in self._keys
        }
        if missing:
            self._fetch(missing, refuse_erased=False)  # seal() refuses each one

    def seal(self, event: Envelope, value: bytes) -> tuple[bytes, bytes]:
        """(Kafka key, wire bytes) of `event`, whose verified encoding is `value`."""
        ref = event.customer
        if event.type not in ERASURE_TYPES:  # which names, by design, an erased customer
            self._refuse_if_erased(event)
        subject = ref.partition_key
        kafka_key = (ref.customer_id or "t:" + self.token(subject)).encode()
        if not _carries_personal(event):  # most events: nothing to parse, nothing to seal
            return kafka_key, value
        wire = orjson.loads(value)
        secret = split_personal(wire)
        if not secret:
            return kafka_key, value
        key = self._keys.get(subject) or self._fetch({subject}, refuse_erased=True)[subject]
        # The event id as the wire writes it: str(UUID) is the same text at ten times the cost.
        box = seal_box(key, wire["event_id"], secret)
        wire[SEALED] = {"key": key.id_text, "box": box}
        return kafka_key, orjson.dumps(wire)

    def _refuse_if_erased(self, event: Envelope) -> None:
        now = time.monotonic()
        if now - self._suppressed_read > self.suppression_ttl_s:
            self._suppressed = self.keys.all_suppressed()
            self._suppressed_read = now
        if not self._suppressed:
            return
        for node in evidence_of(event, self.rules).nodes:
            if self.token(node) in self._suppressed:
                kind = node.split(":", 1)[0]
                raise SubjectErased(
                    f"customer: the {kind} identifier of this event belongs to an erased "
                    "customer; Rapport refuses new events about them"
                )

    def _fetch(self, subjects: set[str], *, refuse_erased: bool) -> dict[str, DataKey]:
        by_token = {self.token(s): s for s in subjects}
        keys, erased = self.keys.keys_for_subjects(by_token)
        if len(self._keys) + len(keys) > _MAX_CACHED_KEYS:
            self._keys.clear()
        found = {by_token[t]: k for t, k in keys.items()}
        self._keys.update(found)
        if erased and refuse_erased:
            suppression = next(iter(erased.values()))
            raise SubjectErased(
                "customer: this event's customer was erased on "
                f"{suppression.erased_at:%Y-%m-%d} (erasure {suppression.erasure_id}); "
                "Rapport refuses new events about them",
                suppression.erasure_id,
            )
        return found


def _carries_personal(event: Envelope) -> bool:
    """Whether `split_personal` may take anything from the event's wire form: it takes a
    field unless it is absent (None) or an empty dict or list (a tuple on the model)."""
    ref = event.customer
    if ref.email or ref.phone or ref.external_ids or ref.social_handles:
        return True
    payload = event.payload
    for name in type(payload).personal_fields:
        value = getattr(payload, name, None)
        # `value not in (None, {}, (), [])` read the same and cost a microsecond an event:
        # comparing a string with a dict and a list goes through both their __eq__.
        if value is not None and (value or type(value) not in _CONTAINERS):
            return True
    return False


_CONTAINERS: tuple[type, ...] = (dict, tuple, list)

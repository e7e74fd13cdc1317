"""Personal data under control: sealed before it reaches Kafka, shredded on erasure.

- `secrets`: the master secret, from which the key-wrapping key and the identifier
  pepper are derived (a KMS would hold it in production).
- `crypto`: AES-GCM boxes, wrapped data keys, identifier tokens.
- `keystore`: where per-customer data keys, destroyed keys and suppressed identifiers live
  (PostgreSQL by default, behind a small interface).
- `sealing` (producers) and `unsealing` (the worker): the two ends of the wire.
- `gate`: inside each projection transaction, events of erased people fold nothing.
- `erasure` and `subject`: `rapport erase` and `rapport export-subject`.

What the contract calls personal is declared in `schemas.privacy`; docs/privacy.md says
what is stored where, sealed or not, and how erasure works.
"""

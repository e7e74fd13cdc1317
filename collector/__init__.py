"""The HTTP collector: web systems post touchpoints (Rapport's schema or Segment's spec).

Layers, outside in: `app` (HTTP only: status codes, headers, bodies) → `segment` and
`rapport_events` (translate and validate requests into Envelopes) → `ingest` (encode,
publish, wait for Kafka's acks). `sources` holds the write keys, `ratelimit` the budgets.
"""

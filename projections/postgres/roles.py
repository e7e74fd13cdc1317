"""PostgreSQL roles of the read side, and the analysts' masked views.

- `rapport_analyst` (NOLOGIN group role; grant it to a login): USAGE and SELECT on schema
  `rapport_analyst` only, whose views mirror `rapport.*` with personal data masked as the
  read API masks it for an analyst's key: identifiers of a personal kind keep their kind
  and get a pseudonym for their value (the first 16 hex digits of HMAC-SHA256 over
  'kind:value', keyed by the same secret as the API's, so both give the same pseudonym),
  personal payload fields and trait values become '[personal]', a summary that may quote
  them becomes the event type. No grant on the projection tables, on `rapport.*` or on
  `rapport_access` (API keys, the pseudonym key).
- `rapport_writer` (NOLOGIN): what the worker's batches need: SELECT, INSERT, UPDATE,
  DELETE on the active version's tables, and reading the version registry.

Both are (re)granted wherever the `rapport.*` views are (re)built (views.point_views_at),
so a swap keeps the masked views on the active version. Creating the roles needs
CREATEROLE; a connection without it leaves them to a DBA and grants to those that exist.

The masked views read the secret from `rapport_access.pseudonym_key` with their owner's
rights; the secret is stored as HMAC's two padded keys, so the SQL needs only sha256().
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import sqlalchemy as sa

from projections.postgres.tables import ANALYST_SCHEMA
from schemas.privacy import MASK
from schemas.registry import REGISTRY

ACCESS_SCHEMA = "rapport_access"
MASKED_SCHEMA = "rapport_analyst"
ANALYST_ROLE = "rapport_analyst"
WRITER_ROLE = "rapport_writer"
KEY_TABLE = f"{ACCESS_SCHEMA}.pseudonym_key"

PERSONAL_KINDS = ("email", "phone", "ext", "social")
PSEUDONYM_HEX_DIGITS = 16

# The `rapport.*` views analysts get a masked copy of: the customer-level ones and the
# aggregates. Not the scores' internals (state, orders, checkpoints, bases) nor the
# identity graph's keys and links (whose reasons are free text).
MASKED_VIEWS = (
    "timeline",
    "customers",
    "purchases",
    "purchases_by_month",
    "channel_daily",
    "scores",
    "score_segments",
    "population",
    "customer_channels",
    "customer_consent",
    "contact_violations",
    "identities",
)


def personal_fields_by_type() -> dict[str, list[str]]:
    """Every type's personal payload fields, over all its versions (an old row keeps the
    fields of the version it was projected from)."""
    found: dict[str, set[str]] = {}
    for entry in REGISTRY.types():
        for model in entry.models.values():
            fields: frozenset[str] = getattr(model, "personal_fields", frozenset())
            if fields:
                found.setdefault(entry.name, set()).update(fields)
    return {t: sorted(f) for t, f in sorted(found.items())}


def hmac_pads(secret: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104) of `secret`."""
    block = 64
    key = hashlib.sha256(secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _texts(values: list[str]) -> str:
    return f"CAST(ARRAY[{', '.join(_literal(v) for v in values)}] AS text[])"


def pseudonym_sql(expr: str) -> str:
    """SQL masking `expr` ('kind:value', or a key) as schemas.privacy.mask_identifier does
    for a personal kind; other values (customer ids, anonymous ids) pass unchanged."""
    kinds = "|".join(PERSONAL_KINDS)
    digest = (
        f"sha256((SELECT outer_pad FROM {KEY_TABLE}) || "
        f"sha256((SELECT inner_pad FROM {KEY_TABLE}) || convert_to({expr}, 'UTF8')))"
    )
    return (
        f"CASE WHEN {expr} ~ '^({kinds}):' THEN split_part({expr}, ':', 1) || ':~' || "
        f"left(encode({digest}, 'hex'), {PSEUDONYM_HEX_DIGITS}) ELSE {expr} END"
    )


def _array_sql(expr: str) -> str:
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL ELSE ARRAY("
        f"SELECT {pseudonym_sql('u.v')} FROM unnest({expr}) WITH ORDINALITY u(v, n) "
        "ORDER BY u.n) END"
    )


def _masked_object_sql(expr: str, only: str | None = None) -> str:
    """`expr` (a JSON object) with its non-null values (those named in the text[] `only`,
    when given) replaced by MASK."""
    which = f" AND e.key = ANY({only})" if only else ""
    return (
        f"{expr} || coalesce((SELECT jsonb_object_agg(e.key, to_jsonb(CAST({_literal(MASK)} "
        f"AS text))) FROM jsonb_each({expr}) e WHERE e.value <> 'null'{which}), "
        "CAST('{}' AS jsonb))"
    )


def _payload_sql() -> str:
    fields = personal_fields_by_type()
    cases = " ".join(f"WHEN {_literal(t)} THEN {_texts(f)}" for t, f in fields.items())
    only = f"(CASE type {cases} ELSE CAST(ARRAY[] AS text[]) END)"
    return (
        f"CASE WHEN jsonb_typeof(payload) = 'object' THEN {_masked_object_sql('payload', only)} "
        "ELSE payload END"
    )


def _summary_sql() -> str:
    types = _texts(list(personal_fields_by_type()))
    return f"CASE WHEN type = ANY({types}) THEN type ELSE summary END"


_COLUMN_MASKS: dict[str, Callable[[], str]] = {
    "customer_id": lambda: pseudonym_sql("customer_id"),
    "key": lambda: pseudonym_sql("key"),
    "identifier": lambda: pseudonym_sql("identifier"),
    "identifiers": lambda: _array_sql("identifiers"),
    "keys": lambda: _array_sql("keys"),
    "traits": lambda: (
        f"CASE WHEN jsonb_typeof(traits) = 'object' THEN {_masked_object_sql('traits')} "
        "ELSE traits END"
    ),
    "payload": _payload_sql,
    "summary": _summary_sql,
}
_COLUMNS_LEFT_OUT = {"score_inputs"}  # the scores' copy of a payload's figures


def ensure_roles(conn: sa.Connection) -> set[str]:
    """Create the two group roles when missing and allowed to; return those that exist."""
    may_create = conn.execute(
        sa.text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    ).scalar_one_or_none()
    if may_create:
        for role in (ANALYST_ROLE, WRITER_ROLE):
            # Roles belong to the cluster: another database's setup may create it meanwhile.
            conn.execute(
                sa.text(
                    f"""DO $$ BEGIN
                        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                            CREATE ROLE {role} NOLOGIN;
                        END IF;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                    END $$"""
                )
            )
    return set(
        conn.execute(
            sa.text("SELECT rolname FROM pg_roles WHERE rolname IN (:a, :w)"),
            {"a": ANALYST_ROLE, "w": WRITER_ROLE},
        ).scalars()
    )


def ensure_access_schema(conn: sa.Connection) -> None:
    """Schema `rapport_access` (no grants to anyone) and its pseudonym key table."""
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ACCESS_SCHEMA}"))
    conn.execute(
        sa.text(
            f"""CREATE TABLE IF NOT EXISTS {KEY_TABLE} (
                id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
                inner_pad bytea NOT NULL,
                outer_pad bytea NOT NULL,
                set_at timestamptz NOT NULL DEFAULT now())"""
        )
    )


def set_pseudonym_key(conn: sa.Connection, secret: bytes) -> None:
    """Key the masked views' pseudonyms with `secret` (the read API's): HMAC's pads."""
    ensure_access_schema(conn)
    inner, outer = hmac_pads(secret)
    conn.execute(
        sa.text(
            f"""INSERT INTO {KEY_TABLE} (id, inner_pad, outer_pad) VALUES (1, :i, :o)
                ON CONFLICT (id) DO UPDATE SET inner_pad = EXCLUDED.inner_pad,
                    outer_pad = EXCLUDED.outer_pad, set_at = now()
                WHERE {KEY_TABLE}.inner_pad <> EXCLUDED.inner_pad"""
        ),
        {"i": inner, "o": outer},
    )


def drop_masked_views(conn: sa.Connection) -> None:
    """Before the `rapport.*` views they are built on are dropped."""
    for name in MASKED_VIEWS:
        conn.execute(sa.text(f"DROP VIEW IF EXISTS {MASKED_SCHEMA}.{name}"))


def create_masked_views(conn: sa.Connection, version_schema: str) -> None:
    """Build the masked views over the (just rebuilt) `rapport.*` views and grant both
    roles what they need on `version_schema`, inside the caller's transaction."""
    ensure_access_schema(conn)
    conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {MASKED_SCHEMA}"))
    for name in MASKED_VIEWS:
        columns = conn.execute(
            sa.text(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:v) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ),
            {"v": f"{ANALYST_SCHEMA}.{name}"},
        ).scalars()
        shown = [
            f"{_COLUMN_MASKS[c]()} AS {c}" if c in _COLUMN_MASKS else c
            for c in columns
            if c not in _COLUMNS_LEFT_OUT
        ]
        conn.execute(
            sa.text(
                f"CREATE VIEW {MASKED_SCHEMA}.{name} AS "
                f"SELECT {', '.join(shown)} FROM {ANALYST_SCHEMA}.{name}"
            )
        )
    roles = ensure_roles(conn)
    if ANALYST_ROLE in roles:
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {MASKED_SCHEMA} TO {ANALYST_ROLE}"))
        conn.execute(
            sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {MASKED_SCHEMA} TO {ANALYST_ROLE}")
        )
    if WRITER_ROLE in roles:
        for statement in _writer_grants(version_schema):
            conn.execute(sa.text(statement))


def _writer_grants(version_schema: str) -> list[str]:
    """What the worker's batches need to write `version_schema`."""
    return [
        f'GRANT USAGE ON SCHEMA "{version_schema}" TO {WRITER_ROLE}',
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
        f'"{version_schema}" TO {WRITER_ROLE}',
        f"GRANT USAGE ON SCHEMA {ANALYST_SCHEMA} TO {WRITER_ROLE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {ANALYST_SCHEMA} TO {WRITER_ROLE}",
        # A batch holds its version's registry row FOR SHARE against a swap.
        f"GRANT UPDATE ON {ANALYST_SCHEMA}.projection_versions TO {WRITER_ROLE}",
    ]


def writer_role_for_worker(conn: sa.Connection, version_schema: str, keys_schema: str) -> bool:
    """Grant the writer role what the worker's batches need in `version_schema` and, read
    only, the key store's tables (to open sealed fields and check suppression); True when
    this session may become it (SET ROLE), so the worker should."""
    if WRITER_ROLE not in ensure_roles(conn):
        return False
    may_become = conn.execute(
        sa.text("SELECT pg_has_role(current_user, :w, 'MEMBER')"), {"w": WRITER_ROLE}
    ).scalar_one()
    if not may_become:
        return False
    for statement in (
        *_writer_grants(version_schema),
        f"GRANT USAGE ON SCHEMA {keys_schema} TO {WRITER_ROLE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {keys_schema} TO {WRITER_ROLE}",
    ):
        conn.execute(sa.text(statement))
    return True

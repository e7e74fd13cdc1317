"""The projection store in PostgreSQL: tables, batch writes, versions, queries, parity."""

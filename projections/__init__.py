"""The read side: pure projectors (folds over events), their PostgreSQL store, and queries."""

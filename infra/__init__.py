"""Running Rapport: settings, local Kafka and PostgreSQL, and the `rapport` command line."""

"""Bulk import: CSV (with a column mapping) and JSON Lines into Kafka, resumable.

`readers` stream rows with their line numbers and byte offsets; `mapping` turns a CSV row
into an event dict; `checkpoint` remembers how far an import got; `run` ties them to the
publisher, writing rejected rows to a rejects file.
"""

from producers.importer.mapping import ColumnMapping
from producers.importer.run import ImportOptions, ImportProgress, ImportReport, run_import

__all__ = ["ColumnMapping", "ImportOptions", "ImportProgress", "ImportReport", "run_import"]

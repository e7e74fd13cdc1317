"""What a failure while storing a batch means: wait and retry, or isolate one record.

A record-level failure is one the same record would cause again however often it is
retried: the projection code refused it (`RecordRefused`), or PostgreSQL refused its data
(SQLSTATE class 22, data exception: an out-of-range value; 23, integrity constraint
violation; 54, program limit exceeded: a row too large). Its batch is split until that
record is alone, the record is parked with its reason, and the rest is stored.

Everything else is about the database, not the record: the connection is lost, the server
is restarting or read-only, a serialization failure or deadlock, a privilege is missing.
The batch is retried, whole, until it succeeds; skipping it would lose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import psycopg2
import sqlalchemy as sa

from projections.errors import RecordRefused, describe

RECORD_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


class Kind(Enum):
    RETRY = "retry"  # the same batch may succeed later: wait, then try again
    RECORD = "record"  # one record of the batch causes it: isolate and park it


@dataclass(frozen=True)
class Fault:
    kind: Kind
    stage: str  # 'fold' or 'database': where the record was refused
    reason: str  # one line: the error's type and message
    error_type: str  # the class name of the error behind it


def classify(error: BaseException) -> Fault:
    """What an error raised by `ProjectionStore.apply_batch` means for its batch."""
    if isinstance(error, RecordRefused):
        return _fault(Kind.RECORD, error.stage, error.cause)
    if isinstance(error, sa.exc.DBAPIError):
        lost = isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)
        if error.connection_invalidated or (lost and not _sqlstate(error.orig)):
            return _fault(Kind.RETRY, "database", error.orig or error)
        return _classify_driver_error(error.orig or error)
    if isinstance(error, psycopg2.Error):  # raised by the bulk writers' raw cursors
        return _classify_driver_error(error)
    if isinstance(error, sa.exc.SQLAlchemyError | ConnectionError | TimeoutError):
        return _fault(Kind.RETRY, "database", error)
    # Any other error comes from turning this batch's events into rows: a record's doing.
    return _fault(Kind.RECORD, "fold", error)


def _sqlstate(error: BaseException | None) -> str:
    return getattr(error, "pgcode", None) or ""


def _classify_driver_error(error: BaseException) -> Fault:
    sqlstate = _sqlstate(error)
    if sqlstate[:2] in RECORD_SQLSTATE_CLASSES:
        return _fault(Kind.RECORD, "database", error, f"SQLSTATE {sqlstate}: ")
    if not sqlstate and not isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError):
        # The driver refused to send a value (e.g. one it cannot adapt): the data's doing.
        return _fault(Kind.RECORD, "database", error)
    return _fault(Kind.RETRY, "database", error)


def _fault(kind: Kind, stage: str, error: BaseException, prefix: str = "") -> Fault:
    return Fault(kind, stage, prefix + describe(error), type(error).__name__)

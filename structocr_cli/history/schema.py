"""The history database's schema, versioned with ``PRAGMA user_version`` and upgraded in
place: ``STEPS[n]`` takes a database from version n to n + 1, in one transaction."""

from __future__ import annotations

import sqlite3

# Version 1. One row per series and minute, the key of a table without rowids, so the
# primary key is the only index; columns without a declared type keep ints as ints and
# floats as floats, as the server sent them.
_V1 = """
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    UNIQUE (name, host, fingerprint)
);
CREATE TABLE observations (
    series INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    second INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    credits_total, credits_used, credits_remaining, credits_this_period,
    requests_this_period, error_rate TEXT, avg_latency_ms,
    key_credits_used, key_requests, key_error_rate TEXT, key_avg_latency_ms,
    PRIMARY KEY (series, minute)
) WITHOUT ROWID;
"""

STEPS = (_V1,)
SCHEMA_VERSION = len(STEPS)


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int | None:
    """Bring the database to ``SCHEMA_VERSION``; one written by a newer release is left as it
    is, and its version returned (None: the database is at this release's version)."""
    found = version(db)
    if found > SCHEMA_VERSION:
        return found
    if found == SCHEMA_VERSION:
        return None
    db.execute("BEGIN IMMEDIATE")  # one process upgrades; the others wait, then see it done
    try:
        found = version(db)
        for step in STEPS[found:]:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return None

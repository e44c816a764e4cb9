"""Database failures a user can fix; their message is the whole story (one line)."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class for database setup errors (bad URL, unreachable server, unmigrated schema)."""


class DatabaseURLError(DatabaseError):
    """The URL cannot be parsed or names a driver that is not installed."""


class DatabaseUnavailableError(DatabaseError):
    """The database does not answer (server down, wrong host, port, user or database name)."""


class SchemaNotMigratedError(DatabaseError):
    """The schema is missing or behind the code's migrations."""

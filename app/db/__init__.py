"""Database plumbing: declarative base, column types, engines and sessions, migrations."""

"""Postgres access: the declarative base, engines and sessions, the embedded server, migrations."""

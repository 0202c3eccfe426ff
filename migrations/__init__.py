"""Alembic migrations for narrate's database (``narrate db upgrade``)."""

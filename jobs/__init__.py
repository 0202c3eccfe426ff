"""Orchestration: the database, Celery tasks and the embedded local executor.

``jobs`` may import ``ssml``, ``renderer`` and ``narrate`` (errors, settings).
"""

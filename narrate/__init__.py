"""narrate: documents in, mastered chapter audio and captions out.

This package holds what every layer shares (the error tree, settings) and the CLI.
Pipeline stages live in the sibling packages ``ssml`` (text work), ``renderer`` (audio)
and ``jobs`` (orchestration, database, Celery).
"""

__version__ = "0.1.0"

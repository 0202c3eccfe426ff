"""Pure text work: ingest documents into chapters, normalise text, segment it and build SSML.

Nothing here does audio, touches a database or imports ``renderer`` or ``jobs``.
"""

"""``narrate serve``: a web page and JSON API over the same typed functions as the CLI.

:func:`narrate.web.app.create_app` builds the application; :func:`narrate.web.server.serve`
runs it with uvicorn; :mod:`narrate.web.security` is the security model.
"""

"""Running the web application: a listening socket, the job runner, uvicorn."""

from __future__ import annotations

import logging
import socket
import sys

from jobs.db import ensure_schema
from jobs.runner import Runner
from narrate.errors import UsageError
from narrate.settings import Settings
from narrate.web.security import check_exposure


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port), or a UsageError saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot listen on {host}: {exc.strerror}", hint="give --host an address"
        ) from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another --port (0 picks a free one)",
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, host: str, port: int, *, announce: bool = True) -> None:
    """Serve the page until interrupted: refuse an exposed address without a token, check
    the database, take the runner (resuming this server's unfinished jobs), listen."""
    import uvicorn

    from narrate.web.app import create_app

    check_exposure(host, settings.serve_token)
    ensure_schema(settings.database_url)
    sock = listen(host, port)
    runner = Runner(settings)
    try:
        runner.start()
        app = create_app(settings, runner, host=host)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        if announce:
            mode = (
                "distributed: jobs go to the workers"
                if runner.distributed
                else f"embedded: jobs run here on {settings.workers} process(es)"
            )
            auth = "token required" if settings.serve_token else "no token (this machine only)"
            print(
                f"narrate serve: http://{shown}:{bound}/ ({mode}; {auth})",
                file=sys.stderr,
                flush=True,
            )
        logging.getLogger("narrate.web").setLevel(logging.WARNING)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        runner.stop()
        sock.close()

"""``narrate serve``: the web page to submit jobs, follow them and listen with the words lit."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    if "serve" not in cli.commands:
        cli.add_command(serve)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any other than loopback needs NARRATE_SERVE_TOKEN.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: a free one, printed at the start).",
)
def serve(host: str, port: int) -> None:
    """Serve the web page: submit documents, watch jobs, download, listen with the words lit.

    On the same database and storage as the other commands. Without NARRATE_BROKER_URL it
    runs the jobs it is given itself (one at a time, on NARRATE_WORKERS processes) and
    resumes them if it is restarted; with a broker it submits them to the workers.
    """
    from narrate.settings import Settings
    from narrate.web.server import serve as run_server

    run_server(Settings.from_env(), host, port)

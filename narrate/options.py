"""Click options that several commands share, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ssml.readalong.overlay import LEVELS


def read_along_option(what: str) -> Callable[[Any], Any]:
    """``--read-along[=word|sentence]`` (``word`` when given alone); ``what`` says what
    the command then writes."""
    return click.option(
        "--read-along",
        "read_along",
        type=click.Choice(LEVELS),
        is_flag=False,
        flag_value="word",
        default=None,
        help=f"{what}: word (the default when given alone) or sentence.",
    )

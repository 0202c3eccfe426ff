"""Click options that several commands share, defined once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from renderer.engines import ENGINES
from ssml.readalong.overlay import LEVELS

F = TypeVar("F", bound=Callable[..., Any])


def document_options(
    default_engine: str = "espeak", engine_help: str | None = None
) -> Callable[[F], F]:
    """``--engine`` and what to read of the document: ``--chapters``, ``--include-matter``,
    ``--lexicon``, ``--latex``."""

    def decorate(func: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--engine",
                    type=click.Choice(ENGINES),
                    default=default_engine,
                    show_default=True,
                    help=engine_help,
                ),
                click.option(
                    "--chapters",
                    metavar="RANGE",
                    help="Only these chapters, 1-based: 3-5 or 1,4-6.",
                ),
                click.option(
                    "--include-matter",
                    is_flag=True,
                    help="Also read front and back matter (cover, title page, colophon...).",
                ),
                click.option(
                    "--lexicon",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="Pronunciation lexicon: `word = alias` lines or a W3C PLS file.",
                ),
                click.option(
                    "--latex",
                    type=click.Choice(["speak", "passthrough"]),
                    default="speak",
                    show_default=True,
                    help="Read formulas aloud, or pass LaTeX through (Chinese text on CosyVoice).",
                ),
            )
        ):
            func = option(func)
        return func

    return decorate


def voicing_options(func: F) -> F:
    """How to speak: voice, model, engine options and the prosody multipliers."""
    for option in reversed(
        [
            click.option("--voice", help="Voice id (see `narrate voices`); default: the engine's."),
            click.option("--model", help="The engine's model, where it has several (cosyvoice)."),
            click.option(
                "--option",
                "engine_options",
                multiple=True,
                metavar="NAME=VALUE",
                help="An engine-specific setting; repeatable (e.g. --option seed=42).",
            ),
            click.option(
                "--rate", type=float, default=1.0, show_default=True, help="Speed multiplier."
            ),
            click.option(
                "--pitch", type=float, default=1.0, show_default=True, help="Pitch multiplier."
            ),
            click.option(
                "--volume", type=float, default=1.0, show_default=True, help="Volume multiplier."
            ),
        ]
    ):
        func = option(func)
    return func


#: what ``--format`` takes (``renderer.stitch.OUTPUT_FORMATS``, not imported: it is heavy)
AUDIO_FORMATS = ("mp3", "wav", "opus", "flac", "m4b")


def audio_format_options(command: F) -> F:
    """``--format``, ``--sample-rate`` and ``--bitrate``: what the chapters are written as."""
    for option in reversed(
        (
            click.option(
                "--format",
                "audio_format",
                type=click.Choice(AUDIO_FORMATS),
                default="mp3",
                show_default=True,
                help="Per chapter; m4b is one audiobook file with chapter marks.",
            ),
            click.option(
                "--sample-rate", "sample_rate_hz", type=int, help="Output sample rate in Hz."
            ),
            click.option(
                "--bitrate", "bitrate_kbps", type=int, help="Bit rate in kbit/s (mp3, opus)."
            ),
        )
    ):
        command = option(command)
    return command


if TYPE_CHECKING:
    _Choice = click.Choice[str]
else:  # click before 8.2 has no generic Choice
    _Choice = click.Choice


class _Level(_Choice):
    """A read-along level. An option whose value is optional takes the next word as its
    value, so ``--read-along BOOK.epub`` reads the input as a level: say how to write it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value not in self.choices and ("." in value or "/" in value):
            self.fail(
                f"{value!r} is not a read-along level (word or sentence); it looks like your "
                "INPUT, which --read-along took as its value: write --read-along=word (or "
                "sentence), or put --read-along after INPUT",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


def read_along_option(what: str) -> Callable[[Any], Any]:
    """``--read-along[=word|sentence]`` (``word`` when given alone); ``what`` says what
    the command then writes."""
    return click.option(
        "--read-along",
        "read_along",
        type=_Level(LEVELS),
        is_flag=False,
        flag_value="word",
        default=None,
        help=f"{what}: word (the default when given alone) or sentence.",
    )

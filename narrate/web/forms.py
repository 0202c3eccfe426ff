"""The submission form, made from the ``submit`` command's own options.

Every option of ``narrate submit`` (``render``'s options, ``--priority`` and ``--partial``)
becomes a form field: a choice a select, a flag a checkbox, a number a number box, a file
option (``--lexicon``, ``--cover``) an upload, ``--option`` a box of NAME=VALUE lines. A
submitted form is turned back into the command's arguments and parsed by the command
itself, then given to :func:`narrate.cli.render_request`: the same checks and messages as
on the command line, and an option added to ``render`` appears in the form by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from narrate.errors import UsageError

#: options shown up front (the rest under "More options"), in this order when present
MAIN = (
    "engine",
    "voice",
    "audio_format",
    "master",
    "rate",
    "chapters",
    "caption_profile",
    "read_along",
)
#: options that only mean something with a broker
DISTRIBUTED_ONLY = ("priority",)
#: options of the command that are not the form's
EXCLUDED = ("input_path", "out_dir", "quiet", "as_json")


@dataclass(frozen=True)
class Field:
    """One form field, from one option of the command."""

    name: str
    #: the option as typed on the command line (``--sample-rate``)
    flag: str
    #: choice | flag | int | float | text | file | lines
    kind: str
    label: str
    help: str
    #: the default as the form shows it ("" for none)
    default: str
    checked: bool
    choices: tuple[str, ...]
    main: bool
    #: a choice that may be left unset (no default): the select offers "none"
    optional: bool = False


@dataclass(frozen=True)
class Submission:
    """What a submitted form asks for: the render options as ``render_request`` takes them,
    and the job's priority and partial setting."""

    options: dict[str, Any]
    priority: str
    allow_partial: bool


def _kind(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if param.multiple:
        return "lines"
    kind = param.type
    if isinstance(kind, click.Choice):
        return "choice"
    if isinstance(kind, click.Path):
        return "file"
    if isinstance(kind, click.types.IntParamType):
        return "int"
    if isinstance(kind, click.types.FloatParamType):
        return "float"
    return "text"


def _label(flag: str) -> str:
    words = flag.lstrip("-").replace("-", " ")
    return words[:1].upper() + words[1:]


def form_fields(command: click.Command, *, distributed: bool) -> tuple[Field, ...]:
    """The fields of ``command``'s options, main ones first."""
    ctx = click.Context(command)
    fields = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in EXCLUDED or param.name is None:
            continue
        if param.name in DISTRIBUTED_ONLY and not distributed:
            continue
        if param.hidden:
            continue
        flag = max(param.opts, key=len)
        kind = _kind(param)
        default = param.get_default(ctx, call=True)
        shown = "" if default is None or kind in ("flag", "lines", "file") else str(default)
        if not isinstance(default, str | int | float | bool):
            shown = ""
        choices: tuple[str, ...] = ()
        if isinstance(param.type, click.Choice):
            choices = tuple(str(c) for c in param.type.choices)
        fields.append(
            Field(
                name=param.name,
                flag=flag,
                kind=kind,
                label=_label(flag),
                help=param.help or "",
                default=shown,
                checked=bool(default) if kind == "flag" else False,
                choices=choices,
                main=param.name in MAIN,
                optional=kind == "choice" and default is None and not param.required,
            )
        )
    order = {name: n for n, name in enumerate(MAIN)}
    return tuple(sorted(fields, key=lambda f: (not f.main, order.get(f.name, 0))))


def arguments(
    fields: Sequence[Field],
    values: Mapping[str, str],
    files: Mapping[str, Path],
    input_path: Path,
) -> list[str]:
    """The command-line arguments a filled-in form stands for (empty fields left out, so
    they take the command's defaults)."""
    argv = [str(input_path)]
    for item in fields:
        if item.kind == "file":
            if item.name in files:
                argv += [item.flag, str(files[item.name])]
            continue
        value = values.get(item.name, "")
        if item.kind == "flag":
            if value not in ("", "0", "off", "false"):
                argv.append(item.flag)
        elif item.kind == "lines":
            for line in value.splitlines():
                if line.strip():
                    argv += [item.flag, line.strip()]
        elif value.strip():
            argv += [item.flag, value.strip()]
    return argv


def parse(command: click.Command, argv: list[str]) -> Submission:
    """Parse ``argv`` with ``command`` as the command line would: a wrong value is a
    :class:`~narrate.errors.UsageError` with click's message (which option, what is
    allowed)."""
    try:
        ctx = command.make_context(command.name or "submit", argv, resilient_parsing=False)
    except click.UsageError as exc:
        hint = None
        if exc.ctx is not None and isinstance(exc, click.BadParameter) and exc.param is not None:
            help_text = getattr(exc.param, "help", None)
            hint = str(help_text) if help_text else None
        raise UsageError(exc.format_message(), hint=hint) from None
    options = dict(ctx.params)
    for name in EXCLUDED:
        if name != "input_path":
            options.pop(name, None)
    priority = str(options.pop("priority", None) or "normal")
    allow_partial = bool(options.pop("allow_partial", False))
    return Submission(options, priority, allow_partial)

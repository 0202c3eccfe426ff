"""Views to JSON, in one place: the CLI's ``--json``, the web page's API and the manifest
writer all go through :func:`to_data`.

Dataclasses become objects with their fields in order (properties are not included),
tuples become lists, enums their values, paths strings, datetimes ISO 8601. The manifest
leaves out empty fields (``drop_empty``) except those its readers rely on (``keep``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def to_data(value: object, *, drop_empty: bool = False, keep: frozenset[str] = frozenset()) -> Any:
    """``value`` as JSON-ready data (dicts, lists, str, int, float, bool, None); with
    ``drop_empty``, dataclass fields that are None or empty are left out unless in ``keep``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for item in dataclasses.fields(value):
            inner = to_data(getattr(value, item.name), drop_empty=drop_empty, keep=keep)
            if drop_empty and inner in (None, [], {}) and item.name not in keep:
                continue
            out[item.name] = inner
        return out
    if isinstance(value, Mapping):
        return {str(k): to_data(v, drop_empty=drop_empty, keep=keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v, drop_empty=drop_empty, keep=keep) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: object, *, indent: int | None = 2) -> str:
    """``value`` as JSON text (UTF-8 characters kept)."""
    return json.dumps(to_data(value), ensure_ascii=False, indent=indent)

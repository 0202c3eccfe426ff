"""Safe file-name slugs from chapter titles."""

from __future__ import annotations

import re
import unicodedata

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str, *, fallback: str, max_length: int = 60) -> str:
    """A lowercase ASCII slug of ``title`` ("../../x" -> "x"); ``fallback`` if none is left.

    The result only holds ``a-z``, ``0-9`` and single inner hyphens, so it can never name
    a path outside the output folder.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_title.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or fallback

"""Reading untrusted zip archives (EPUB, DOCX): caps before and while unpacking.

* :func:`check_zip` refuses an archive whose directory declares too many members, a member
  or a total too large, or a compression ratio a zip bomb would have, before anything is
  extracted (:class:`ZipLimits`).
* :func:`read_member` reads one member in chunks and stops as soon as the actual bytes
  exceed its cap, whatever its header declared.
* :class:`Archive` is what the EPUB and DOCX readers share: it opens the bytes, checks
  them, and reads members by name (case-insensitively) as bytes, as markup cleaned of
  characters XML cannot carry (each with a warning), or as XML through the hardened parser
  (no entities, no DTD, no network).

Messages name the kind of document (:class:`Kind`) and how to fix it.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Self

from narrate.errors import DocumentTooLargeError, MalformedDocumentError
from ssml.ingest.clean import clean_markup_bytes
from ssml.ingest.safexml import parse_xml

MiB = 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Kind:
    """What kind of archive a document is, for messages: ``EPUB``, ``DOCX``."""

    label: str
    #: how to fix a broken one
    fix: str


EPUB = Kind("EPUB", "re-export it from the program that made it, or check it with epubcheck")
DOCX = Kind("DOCX", "open it in Word or LibreOffice and save it again as a .docx document")


@dataclass(frozen=True)
class ZipLimits:
    """Safety caps for reading a zip archive.

    The ratio cap only applies to members whose size is above ``ratio_floor``: tiny
    members (a short CSS file full of spaces) can legitimately compress better than
    100:1, and they cannot be bombs.
    """

    max_members: int = 10_000
    max_member_size: int = 64 * MiB
    max_total_size: int = 512 * MiB
    max_ratio: int = 100
    ratio_floor: int = 1 * MiB
    chunk_size: int = 64 * 1024


DEFAULT_ZIP_LIMITS = ZipLimits()


def broken(what: str, kind: Kind) -> MalformedDocumentError:
    return MalformedDocumentError(f"the {kind.label} is broken: {what}", hint=kind.fix)


def check_zip(
    archive: zipfile.ZipFile,
    name: str,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
    kind: Kind = EPUB,
) -> None:
    """Refuse an archive whose directory declares too many or too large members."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise DocumentTooLargeError(
            f"{name} has {len(members)} files inside; the limit is {limits.max_members}",
            hint=f"a {kind.label} document never needs that many; {kind.fix}",
        )
    total = 0
    for info in members:
        _check_declared(info, name, limits, kind)
        total += info.file_size
        if total > limits.max_total_size:
            raise DocumentTooLargeError(
                f"{name} would unpack to more than {limits.max_total_size // MiB} MB",
                hint=f"split it into smaller files, or {kind.fix}",
            )


def _check_declared(info: zipfile.ZipInfo, name: str, limits: ZipLimits, kind: Kind) -> None:
    if info.file_size > limits.max_member_size:
        raise _member_too_large(info.filename, name, limits, kind)
    if info.file_size > limits.ratio_floor and (
        info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
    ):
        raise _bomb(info.filename, name, limits, kind)


def _member_too_large(
    member: str, name: str, limits: ZipLimits, kind: Kind
) -> DocumentTooLargeError:
    return DocumentTooLargeError(
        f"{member} inside {name} is larger than the {limits.max_member_size // MiB} MB "
        "limit for one file in an archive",
        hint=f"shrink or split that file (large images are the usual cause), or {kind.fix}",
    )


def _bomb(member: str, name: str, limits: ZipLimits, kind: Kind) -> DocumentTooLargeError:
    return DocumentTooLargeError(
        f"{member} inside {name} is compressed more than {limits.max_ratio}:1, which is "
        "what a zip bomb looks like; narrate refuses to unpack it",
        hint=f"if the file is genuine, {kind.fix}",
    )


def read_member(
    archive: zipfile.ZipFile,
    member: str,
    name: str,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
    kind: Kind = EPUB,
) -> bytes:
    """Read one member, stopping as soon as it exceeds its caps, whatever it declared."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise broken(f"{member} is missing from {name}", kind) from None
    _check_declared(info, name, limits, kind)
    ratio_cap = max(limits.ratio_floor, info.compress_size * limits.max_ratio)
    cap = min(limits.max_member_size, ratio_cap)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(limits.chunk_size):
                size += len(chunk)
                if size > cap:
                    if size > limits.max_member_size:
                        raise _member_too_large(member, name, limits, kind)
                    raise _bomb(member, name, limits, kind)
                chunks.append(chunk)
    except (
        zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError
    ) as exc:  # fmt: skip
        raise broken(f"{member} inside {name} cannot be unpacked ({exc})", kind) from None
    except RuntimeError as exc:  # encrypted, or an unsupported compression method
        raise MalformedDocumentError(
            f"the {kind.label} is broken: {member} inside {name} cannot be read ({exc})",
            hint=f"remove any password or DRM, or {kind.fix}",
        ) from None
    return b"".join(chunks)


def open_zip(data: bytes, name: str, kind: Kind) -> zipfile.ZipFile:
    """Open the bytes as a zip, or raise MalformedDocumentError."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise MalformedDocumentError(
            f"{name} is not a readable {kind.label} (not a zip archive: {exc})",
            hint=kind.fix,
        ) from None


class Archive:
    """A checked zip archive: members read with the caps, markup cleaned and parsed
    hardened. ``warnings`` collects what cleaning took out of the members read so far."""

    def __init__(
        self, data: bytes, name: str, kind: Kind, limits: ZipLimits = DEFAULT_ZIP_LIMITS
    ) -> None:
        self.zip = open_zip(data, name, kind)
        check_zip(self.zip, name, limits, kind)
        self.name = name
        self.kind = kind
        self.limits = limits
        self.names = {n.casefold(): n for n in self.zip.namelist()}
        self.warnings: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.zip.close()

    def has(self, path: str) -> bool:
        return path.casefold() in self.names

    def read(self, path: str) -> bytes:
        member = self.names.get(path.casefold())
        if member is None:
            raise self.broken(f"{path} is missing from {self.name}")
        return read_member(self.zip, member, self.name, self.limits, self.kind)

    def markup(self, path: str) -> bytes:
        """A member's bytes without characters XML cannot carry (with a warning)."""
        data, cleaned = clean_markup_bytes(self.read(path))
        warning = cleaned.warning(f"{path} in {self.name}")
        if warning:
            self.warnings.append(warning)
        return data

    def xml(self, path: str) -> Any:
        """A member as XML: entity declarations refused, nothing resolved or fetched."""
        return parse_xml(self.markup(path), f"{path} in {self.name}", fix=self.kind.fix)

    def broken(self, what: str) -> MalformedDocumentError:
        return broken(what, self.kind)

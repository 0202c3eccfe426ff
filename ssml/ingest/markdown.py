"""Markdown ingest (CommonMark via markdown-it-py, with footnotes, tables and ``$`` math).

``#`` and ``##`` headings start chapters; deeper headings are body paragraphs. Paragraphs,
list items, blockquote paragraphs and table rows become paragraphs; code blocks, HTML
blocks, images, footnote references and footnote definitions are dropped; links keep
their text, inline code keeps its text, emphasis markers go. Math (``$..$``,
``$$..$$``) is kept as LaTeX for the annotation stage, re-delimited as ``\\(..\\)``
(inline) and ``\\[..\\]`` (display) so that no later stage has to guess about ``$``.
A ``$`` is maths only by Pandoc's rules (no space inside the delimiters, no digit right
after the closing one), so prices ("$5 and $10") stay text.

d2l-book markup (https://d2l.ai) is recognised when a document uses its roles, and then
``:label:``/``:eqlabel:`` roles are dropped, ``:numref:``/``:eqref:`` become "the
figure"/"the section"/... , ``:cite:``/``:citet:`` become the author and year, the
``(**``/``**)`` and ``[**``/``**]`` highlight markers go, and ``:begin_tab:`` ...
``:end_tab:`` blocks are dropped entirely.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from ssml.document import Document
from ssml.ingest.html import is_footnote_marker
from ssml.ingest.text import Section, assemble, decode_utf8

# --- d2l-book markup --------------------------------------------------------------------

_D2L_RE = re.compile(r"^:(?:begin_tab|label|eqlabel):|:(?:numref|eqref|label|citet|cite):`", re.M)
_ROLE_ONLY_LINE_RE = re.compile(r"\s*(?::(?:label|eqlabel):`[^`\n]*`\s*)+")
_ROLE_RE = re.compile(r":([a-z]+):`([^`\n]*)`")
_BLANK_LINE_RE = re.compile(r"(\n[ \t]*\n)")
_REFERENCE_NOUNS = {
    "fig": "the figure",
    "sec": "the section",
    "subsec": "the section",
    "chap": "the chapter",
    "tab": "the table",
    "eq": "the equation",
}


def is_d2l(text: str) -> bool:
    """Whether the text uses d2l-book roles (``:label:``, ``:numref:``, ``:begin_tab:`` ...)."""
    return bool(_D2L_RE.search(text))


def _citation(keys: str) -> str:
    """``Petersen.Pedersen.ea.2008`` -> ``Petersen, Pedersen et al. 2008``."""
    spoken = []
    for key in keys.split(","):
        names = [p for p in key.strip().split(".") if p]
        year = names.pop() if names and names[-1].isdigit() else ""
        etal = bool(names) and names[-1] == "ea"
        people = ", ".join(names[:-1] if etal else names)
        spoken.append(" ".join(p for p in (people + (" et al." if etal else ""), year) if p))
    return "; ".join(s for s in spoken if s)


def _role(match: re.Match[str]) -> str:
    role, target = match.group(1), match.group(2)
    if role in ("label", "eqlabel"):
        return ""
    if role in ("numref", "eqref"):
        prefix = target.split("_", 1)[0]
        return _REFERENCE_NOUNS.get(prefix, "the equation" if role == "eqref" else "the section")
    if role in ("cite", "citet", "citep"):
        return _citation(target)
    return target


def strip_d2l(lines: Sequence[str]) -> tuple[list[str], list[int]]:
    """Remove d2l-book markup; return the kept lines and each one's 0-based origin line."""
    kept: list[str] = []
    origin: list[int] = []
    next_end = _next_end_tab(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip().startswith(":begin_tab:"):
            end = next_end[index]
            if end is not None:
                index = end + 1
                continue
        elif not _ROLE_ONLY_LINE_RE.fullmatch(line) and line.strip() != ":end_tab:":
            kept.append(_ROLE_RE.sub(_role, line))
            origin.append(index)
        index += 1
    return kept, origin


def _next_end_tab(lines: Sequence[str]) -> list[int | None]:
    """For each line, the index of the first later ``:end_tab:`` line (one backward pass)."""
    result: list[int | None] = [None] * len(lines)
    following: int | None = None
    for index in range(len(lines) - 1, -1, -1):
        result[index] = following
        if lines[index].strip() == ":end_tab:":
            following = index
    return result


def unwrap_highlights(text: str) -> str:
    """Drop d2l's ``(**``/``**)`` and ``[**``/``**]`` markers (never across a blank line)."""
    paragraphs = _BLANK_LINE_RE.split(text)
    return "".join(
        _unwrap(_unwrap(part, "(**", "**)", None), "[**", "**]", "([") for part in paragraphs
    )


def _unwrap(text: str, opener: str, closer: str, not_before: str | None) -> str:
    """Remove ``opener``...``closer`` pairs, keeping the inside; linear time.

    A pair whose closer is followed by a character in ``not_before`` is left alone
    (``[**bold**](url)`` is a Markdown link, not a highlight).
    """
    out: list[str] = []
    done = 0
    while (start := text.find(opener, done)) != -1:
        end = text.find(closer, start + len(opener))
        if end == -1:
            break
        after = end + len(closer)
        if not_before and text[after : after + 1] and text[after] in not_before:
            out.append(text[done:after])
        else:
            out.append(text[done:start])
            out.append(text[start + len(opener) : end])
        done = after
    out.append(text[done:])
    return "".join(out)


# --- Markdown ---------------------------------------------------------------------------

_FRONT_TITLE_RE = re.compile(r"^title:\s*(.+?)\s*$", re.M)
_SUP_OPEN_RE = re.compile(r"<sup\b", re.I)
_BR_RE = re.compile(r"<br\b", re.I)
_SUP_CLOSE_RE = re.compile(r"</sup\s*>", re.I)
_SKIPPED_BLOCKS = {"footnote_block_open": "footnote_block_close"}


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(front_matter_plugin).use(footnote_plugin)
    return md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)


def render_inline(children: Sequence[Token]) -> str:
    """The spoken text of an inline token's children."""
    parts: list[str] = []
    sup_start: int | None = None  # index in parts where an inline-HTML <sup> began
    for tok in children:
        if tok.type == "html_inline" and _SUP_OPEN_RE.match(tok.content):
            sup_start = len(parts)
        elif tok.type == "html_inline" and _SUP_CLOSE_RE.match(tok.content):
            if sup_start is not None and is_footnote_marker("".join(parts[sup_start:])):
                del parts[sup_start:]
            sup_start = None
        elif tok.type in ("text", "code_inline"):
            parts.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak") or (
            tok.type == "html_inline" and _BR_RE.match(tok.content)
        ):
            parts.append(" ")
        elif tok.type == "math_inline":
            parts.append(f"\\({tok.content}\\)")
        elif tok.type == "math_inline_double":
            parts.append(f"\\[{tok.content}\\]")
    return "".join(parts)


@dataclass
class _Walk:
    origin: list[int]
    preamble_title: str

    def sections(self, tokens: Sequence[Token]) -> list[Section]:
        sections = [
            Section(self.preamble_title, source="line 1", merge_if_empty=False, speak_heading=False)
        ]
        heading_level = 0
        row: list[str] | None = None
        skip_until = ""
        for tok in tokens:
            if skip_until:
                skip_until = "" if tok.type == skip_until else skip_until
            elif tok.type in _SKIPPED_BLOCKS:
                skip_until = _SKIPPED_BLOCKS[tok.type]
            elif tok.type == "heading_open":
                heading_level = int(tok.tag[1:])
                if heading_level <= 2:
                    sections.append(Section("", source=self._line(tok)))
            elif tok.type == "heading_close":
                heading_level = 0
            elif tok.type == "tr_open":
                row = []
            elif tok.type == "tr_close" and row is not None:
                sections[-1].paragraphs.append(", ".join(c for c in row if c.strip()))
                row = None
            elif tok.type == "math_block" or tok.type == "math_block_label":
                sections[-1].paragraphs.append(f"\\[{tok.content}\\]")
            elif tok.type == "inline":
                text = render_inline(tok.children or [])
                if row is not None:
                    row.append(text)
                elif 1 <= heading_level <= 2:
                    sections[-1].title = text
                else:
                    sections[-1].paragraphs.append(text)
        return sections

    def _line(self, tok: Token) -> str:
        if tok.map is None:
            return ""
        start = tok.map[0]
        return f"line {(self.origin[start] if start < len(self.origin) else start) + 1}"


def document_title(tokens: Sequence[Token]) -> str | None:
    """The front-matter ``title:``, else the only ``#`` heading if it opens the document."""
    body = [tok for tok in tokens if tok.type != "front_matter"]
    for tok in tokens:
        if tok.type == "front_matter":
            match = _FRONT_TITLE_RE.search(tok.content)
            if match:
                return match.group(1).strip("'\"") or None
    h1_count = sum(1 for tok in body if tok.type == "heading_open" and tok.tag == "h1")
    if h1_count == 1 and len(body) > 1 and body[0].type == "heading_open" and body[0].tag == "h1":
        return render_inline(body[1].children or []).strip() or None
    return None


def parse(data: bytes, name: str, stem: str) -> Document:
    """Parse UTF-8 Markdown into a Document."""
    text = decode_utf8(data, name)
    lines = text.splitlines()
    origin = list(range(len(lines)))
    if is_d2l(text):
        lines, origin = strip_d2l(lines)
        text = unwrap_highlights("\n".join(lines))
    else:
        text = "\n".join(lines)
    tokens = _markdown().parse(text)
    title = document_title(tokens)
    sections = _Walk(origin, title or "Introduction").sections(tokens)
    return Document(chapters=tuple(assemble(sections)), title=title, format="markdown")

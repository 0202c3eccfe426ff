"""Markdown ingest (CommonMark via markdown-it-py, with footnotes, tables and ``$`` math).

``#`` and ``##`` headings start chapters; deeper headings are body paragraphs. Paragraphs,
list items, blockquote paragraphs and table rows become paragraphs; code blocks, HTML
blocks, images, footnote references and footnote definitions are dropped; links keep
their text, inline code keeps its text, emphasis markers go.

Maths is written ``$...$`` or ``\\(...\\)`` (inline) and ``$$...$$`` or ``\\[...\\]``
(display: inside a paragraph, or as a block of its own, where the delimiters may stand
on lines of their own and the formula span several lines). It is kept as LaTeX for the
annotation stage, re-delimited as ``\\(..\\)`` (inline) and ``\\[..\\]`` (display), and
every backslash of ordinary text is doubled, so that the annotation stage knows exactly
what is maths (it undoes the doubling): ``\\\\(`` in the source is Markdown's escaped
backslash followed by ``(``, text that stays ``\\(`` and is never read as a formula, and
so is anything in a code span. A ``$`` is maths only by Pandoc's rules (no space inside
the delimiters, no digit right after the closing one), so prices ("$5 and $10") stay text.
An empty formula (``$$ $$``, ``\\(\\)``, ``$$$$`` on a line of its own), a run of three
or more ``$`` (``$$$$`` in a sentence) and a ``$$`` that opens no formula (no closer)
are left out of the text with a warning naming the line, so none is ever read as
"dollar dollar"; write ``\\$\\$`` for two dollar signs. Finding maths is linear: a
closer is looked for once, and a ``$$`` or ``\\[`` block that would have to scan the rest
of the document for a closer that is not there is known not to be one from an index of
the closing lines.

d2l-book markup (https://d2l.ai) is recognised when a document uses its roles, and then
``:label:``/``:eqlabel:`` roles are dropped, ``:numref:``/``:eqref:`` become "the
figure"/"the section"/... , ``:cite:``/``:citet:`` become the author and year, the
``(**``/``**)`` and ``[**``/``**]`` highlight markers go, and ``:begin_tab:`` ...
``:end_tab:`` blocks are dropped entirely.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.dollarmath.index import math_block_dollar
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from ssml.document import BookMetadata, Document
from ssml.ingest.frontmatter import FrontMatter, read_front_matter
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

_SUP_OPEN_RE = re.compile(r"<sup\b", re.I)
_BR_RE = re.compile(r"<br\b", re.I)
_SUP_CLOSE_RE = re.compile(r"</sup\s*>", re.I)
_SKIPPED_BLOCKS = {"footnote_block_open": "footnote_block_close"}


_MATH_TOKENS = {"math_inline": False, "math_inline_double": True}
_DOLLAR_RUN_RE = re.compile(r"\${2,}")
_DOLLAR_CLOSE_LINE_RE = re.compile(r"\$\$\s*(?:\([^)$\r\n]+?\)\s*)?$")
_BRACKET_CLOSE_LINE_RE = re.compile(r"\\\]\s*$")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(front_matter_plugin).use(footnote_plugin)
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    md.block.ruler.at("math_block", _dollar_block(math_block_dollar(True, None, True)))
    md.block.ruler.before("fence", "math_block_bracket", _bracket_block)
    md.inline.ruler.before("escape", "math_bracket", _bracket_inline)
    md.inline.ruler.before("math_inline", "dollar_run", _dollar_run)
    md.core.ruler.disable("text_join")  # keep escaped characters apart (text_special)
    return md


# --- maths between \( \) and \[ \], and a linear $$ block ----------------------------------


def _latex_closer(src: str, start: int, end: int, closer: str) -> int:
    """Where ``closer`` is in ``src[start:end]``, reading ``\\x`` pairs as one token; or -1."""
    while (k := src.find("\\", start, end)) >= 0:
        if src.startswith(closer, k):
            return k
        start = k + 2
    return -1


def _bracket_inline(state: StateInline, silent: bool) -> bool:
    r"""``\(...\)`` and ``\[...\]`` inside a paragraph (before Markdown's escapes)."""
    src, pos = state.src, state.pos
    if src[pos] != "\\" or pos + 1 >= state.posMax or src[pos + 1] not in "([":
        return False
    closer = "\\)" if src[pos + 1] == "(" else "\\]"
    missing = _missing_closers(state)
    if closer in missing:
        return False
    end = _latex_closer(src, pos + 2, state.posMax, closer)
    if end < 0:
        missing.add(closer)  # none after here either: never search again
        return False
    if not silent:
        token = state.push("math_inline" if closer == "\\)" else "math_inline_double", "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = src[pos : pos + 2]
    state.pos = end + 2
    return True


def _dollar_run(state: StateInline, silent: bool) -> bool:
    """A run of three or more ``$`` (``$$$$``: an empty formula) is text, never an opener.

    dollarmath would read ``$$$$ a $$`` as the formula ``$ a``; as text, the run is left
    out with a warning like any ``$$`` that opens no formula.
    """
    src, pos = state.src, state.pos
    if not src.startswith("$$$", pos):
        return False
    end = pos + 3
    while end < state.posMax and src[end] == "$":
        end += 1
    if not silent:
        state.pending += src[pos:end]
    state.pos = end
    return True


def _missing_closers(state: StateInline) -> set[str]:
    """Closers known to be absent from the rest of this inline text (kept in ``env``)."""
    memo = state.env.get("narrate_missing_closers")
    if memo is None or memo[0] is not state.src:
        memo = (state.src, set())
        state.env["narrate_missing_closers"] = memo
    missing: set[str] = memo[1]
    return missing


@dataclass
class _CloserLines:
    """Line numbers (as markdown-it counts them) that could close a ``$$`` or ``\\[`` block."""

    src: str
    dollar: list[int] = field(default_factory=list)
    bracket: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, state: StateBlock) -> _CloserLines:
        known = state.env.get("narrate_closer_lines")
        if isinstance(known, cls) and known.src is state.src:
            return known
        lines = cls(state.src)
        for number, line in enumerate(state.src.split("\n")):
            if "$$" in line and _DOLLAR_CLOSE_LINE_RE.search(line):
                lines.dollar.append(number)
            if "\\]" in line and _BRACKET_CLOSE_LINE_RE.search(line):
                lines.bracket.append(number)
        state.env["narrate_closer_lines"] = lines
        return lines

    @staticmethod
    def any_between(numbers: list[int], after: int, before: int) -> bool:
        k = bisect_right(numbers, after)
        return k < len(numbers) and numbers[k] < before


BlockRule = Callable[[StateBlock, int, int, bool], bool]


def _dollar_block(rule: BlockRule) -> BlockRule:
    """dollarmath's ``$$`` block rule, skipped when no later line could close the block.

    Without the check, every ``$$`` that opens no block scans to the end of the document
    (blank lines may be inside a ``$$`` block): quadratic for many of them.
    """

    def dollar_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        start = state.bMarks[start_line] + state.tShift[start_line]
        if not state.src.startswith("$$", start):
            return False
        line = state.src[start : state.eMarks[start_line]]
        closed_here = len(line.strip()) > 3 and bool(_DOLLAR_CLOSE_LINE_RE.search(line[2:]))
        if not closed_here and not _CloserLines.any_between(
            _CloserLines.of(state).dollar, start_line, end_line
        ):
            return False
        return rule(state, start_line, end_line, silent)

    return dollar_block


def _bracket_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    r"""``\[`` at the start of a line up to a line that ends with ``\]``, a display block.

    The formula may span lines (then ``\[`` and ``\]`` may stand on lines of their own)
    but not a blank line; a ``\]`` followed by more text on its line is no block (the
    paragraph reads it inline).
    """
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False  # an indented code block
    start = state.bMarks[start_line] + state.tShift[start_line]
    if not state.src.startswith("\\[", start):
        return False
    first_end = state.eMarks[start_line]
    closer = _latex_closer(state.src, start + 2, first_end, "\\]")
    last = start_line
    if closer >= 0:
        if state.src[closer + 2 : first_end].strip():
            return False
    else:
        if not _CloserLines.any_between(_CloserLines.of(state).bracket, start_line, end_line):
            return False
        while True:
            last += 1
            if last >= end_line:
                return False
            begin, end = state.bMarks[last] + state.tShift[last], state.eMarks[last]
            if begin >= end:
                return False  # a blank line: no display maths across paragraphs
            closer = _latex_closer(state.src, begin, end, "\\]")
            if closer >= 0:
                if state.src[closer + 2 : end].strip():
                    return False
                break
    if silent:
        return True
    parts = [state.src[start + 2 : first_end if last > start_line else closer]]
    for number in range(start_line + 1, last + 1):
        begin = state.bMarks[number] + state.tShift[number]
        parts.append(state.src[begin : closer if number == last else state.eMarks[number]])
    token = state.push("math_block", "math", 0)
    token.block = True
    token.content = "\n".join(parts)
    token.markup = "\\["
    token.map = [start_line, last + 1]
    state.line = last + 1
    return True


# --- tokens to text -----------------------------------------------------------------------


def _literal(text: str) -> str:
    """Ordinary text for the annotation stage: every backslash doubled (see the docstring)."""
    return text.replace("\\", "\\\\")


def _formula(content: str, display: bool, warnings: list[str] | None, where: str) -> str:
    """A formula re-delimited for the annotation stage, or "" (with a warning) if empty."""
    if not content.strip():
        if warnings is not None:
            warnings.append(f"{where}: an empty formula was left out of the text")
        return ""
    return f"\\[{content}\\]" if display else f"\\({content}\\)"


def _text(content: str, warnings: list[str] | None, where: str) -> str:
    """Unescaped text: a run of ``$$`` that opens no formula is left out, with a warning."""
    if "$$" in content:
        for run in _DOLLAR_RUN_RE.findall(content):
            if warnings is not None:
                warnings.append(
                    f"{where}: {run!r} opens no formula (no closing {run[:2]!r}, or nothing "
                    "between) and was left out of the text; write \\$ for a dollar sign"
                )
        content = _DOLLAR_RUN_RE.sub("", content)
    return _literal(content)


def render_inline(
    children: Sequence[Token], warnings: list[str] | None = None, where: str = ""
) -> str:
    """The text of an inline token's children (formulas as ``\\(..\\)``/``\\[..\\]``)."""
    parts: list[str] = []
    sup_start: int | None = None  # index in parts where an inline-HTML <sup> began
    for tok in children:
        if tok.type == "html_inline" and _SUP_OPEN_RE.match(tok.content):
            sup_start = len(parts)
        elif tok.type == "html_inline" and _SUP_CLOSE_RE.match(tok.content):
            if sup_start is not None and is_footnote_marker("".join(parts[sup_start:])):
                del parts[sup_start:]
            sup_start = None
        elif tok.type == "text":
            parts.append(_text(tok.content, warnings, where))
        elif tok.type in ("text_special", "code_inline"):
            parts.append(_literal(tok.content))
        elif tok.type in ("softbreak", "hardbreak") or (
            tok.type == "html_inline" and _BR_RE.match(tok.content)
        ):
            parts.append(" ")
        elif tok.type in _MATH_TOKENS:
            parts.append(_formula(tok.content, _MATH_TOKENS[tok.type], warnings, where))
    return "".join(parts)


@dataclass
class _Walk:
    origin: list[int]
    preamble_title: str
    warnings: list[str] = field(default_factory=list)

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
                formula = _formula(tok.content, True, self.warnings, self._line(tok))
                if formula:
                    sections[-1].paragraphs.append(formula)
            elif tok.type == "inline":
                text = render_inline(tok.children or [], self.warnings, self._line(tok))
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


def front_matter(tokens: Sequence[Token]) -> tuple[FrontMatter, list[str]]:
    """The YAML front matter's metadata (:mod:`ssml.ingest.frontmatter`), if there is one."""
    for tok in tokens:
        if tok.type == "front_matter":
            return read_front_matter(tok.content)
    return FrontMatter(), []


def document_title(tokens: Sequence[Token], front: FrontMatter | None = None) -> str | None:
    """The front matter's ``title``, else the only ``#`` heading if it opens the document.

    Like all text from this module, with its backslashes doubled (see the docstring).
    """
    body = [tok for tok in tokens if tok.type != "front_matter"]
    if front is not None and front.title:
        return _literal(front.title) or None
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
    front, front_warnings = front_matter(tokens)
    title = document_title(tokens, front)
    walk = _Walk(origin, title or "Introduction")
    sections = walk.sections(tokens)
    return Document(
        chapters=tuple(assemble(sections)),
        title=title,
        language=front.language,
        format="markdown",
        warnings=tuple(front_warnings + walk.warnings),
        metadata=BookMetadata(
            title=front.title,
            authors=front.authors,
            language=front.language,
            date=front.date,
            description=front.description,
            cover_file=front.cover,
        ),
    )

"""A tolerant LaTeX maths parser: source in, a :mod:`ssml.latex.nodes` tree out.

Rules:

* It never raises on bad input. Missing braces, unknown commands, unbalanced
  ``\\left``/``\\right`` and unfinished environments are read as well as they can be, and
  each problem is recorded in :attr:`Parser.warnings`.
* Work is bounded: nesting deeper than :data:`MAX_DEPTH`, more than
  :data:`MAX_EXPANSIONS` macro expansions (``\\def``, ``\\newcommand``) or a parse running
  past its deadline stops the reader, which keeps what it has and warns. The deadline
  is on this thread's CPU clock (``time.thread_time``), so a stall of a busy machine
  never changes what a formula reads as.
* Letters are single identifiers (``ab`` is ``a`` times ``b``); digits with one decimal
  point make a number (``9.8``), except as an unbraced argument (``\\frac12``).
* Plain ``( ) [ ] \\{ \\} | \\|`` that pair up within one row become :class:`Fenced`
  nodes; unpaired ones stay operators (``[0, 1)``).
"""

from __future__ import annotations

import re
import time

from ssml.latex import symbols as sym
from ssml.latex.chem import parse_chem
from ssml.latex.nodes import (
    Accent,
    BigOp,
    Dots,
    Fenced,
    Frac,
    Func,
    Ident,
    Node,
    Num,
    Op,
    Root,
    Row,
    Scripts,
    Space,
    Special,
    Styled,
    Table,
    Text,
    Unknown,
)

MAX_DEPTH = 40
MAX_EXPANSIONS = 200

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_CMD_RE = re.compile(r"\\([A-Za-z]+)\*?|\\(.)", re.S)
_ENV_RE = re.compile(r"\s*\{([A-Za-z*]+)\}")
_DIMENSION_RE = re.compile(r"\s*-?[\d.]*\s*(?:em|ex|mu|pt|px|cm|mm|in)?")
_ONE_ARG_IGNORED = frozenset(
    ["label", "tag", "hspace", "vspace", "color", "phantom", "hphantom", "vphantom", "mathstrut"]
)
_ARG_KEPT = frozenset(
    ["boxed", "cancel", "bcancel", "xcancel", "smash", "overbrace", "underbrace", "mathstrut"]
)
_ALIGN_ENVS = frozenset(
    [
        "aligned",
        "align",
        "alignat",
        "alignedat",
        "gather",
        "gathered",
        "split",
        "eqnarray",
        "multline",
        "flalign",
    ]
)
_MATRIX_ENVS = frozenset(
    [
        "matrix",
        "pmatrix",
        "bmatrix",
        "Bmatrix",
        "vmatrix",
        "Vmatrix",
        "smallmatrix",
        "array",
        "subarray",
    ]
)


class _Stop(Exception):
    """The parse ran out of time or depth; the parser keeps what it has."""


class Parser:
    """Parse one formula: ``Parser(source).parse()``; problems go to ``warnings``."""

    def __init__(self, source: str, *, deadline: float | None = None) -> None:
        self.s = source
        self.i = 0
        self.warnings: list[str] = []
        self.depth = 0
        self.macros: dict[str, tuple[int, str]] = {}
        self.expansions = 0
        self.deadline = deadline
        self.stopped = False

    # --- entry -------------------------------------------------------------------------

    def parse(self) -> Row:
        try:
            row = self.expr(frozenset())
        except _Stop:
            self.stopped = True
            return Row([Text(["(formula too complex to read)"])])
        while self.i < len(self.s):  # stray closers at top level: skip and go on
            self.warn(f"unexpected {self.s[self.i : self.i + 6]!r}")
            self.i += 1 if self.s[self.i] != "\\" else len(self._peek_command() or "\\") + 1
            try:
                row.items.extend(self.expr(frozenset()).items)
            except _Stop:
                self.stopped = True
                break
        return row

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # --- low level -----------------------------------------------------------------------

    def _check(self) -> None:
        if self.deadline is not None and time.thread_time() > self.deadline:
            self.warn("the formula took too long to read; the rest is left out")
            raise _Stop
        if self.depth > MAX_DEPTH:
            self.warn("the formula is nested too deeply; the rest is left out")
            raise _Stop

    def _skip_space(self) -> None:
        s = self.s
        while self.i < len(s):
            if s[self.i].isspace():
                self.i += 1
            elif s[self.i] == "%":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end + 1
            else:
                break

    def _peek_command(self) -> str | None:
        m = _CMD_RE.match(self.s, self.i)
        if not m:
            return None
        return m.group(1) if m.group(1) is not None else m.group(2)

    def _at_next_command(self, names: set[str]) -> bool:
        self._skip_space()
        return self._at_command(names)

    def _at_command(self, names: frozenset[str] | set[str]) -> bool:
        name = self._peek_command()
        return name is not None and name in names

    def _read_command(self) -> str:
        m = _CMD_RE.match(self.s, self.i)
        assert m is not None
        self.i = m.end()
        return m.group(1) if m.group(1) is not None else m.group(2)

    def _raw_group(self) -> str | None:
        """The raw text of a balanced ``{...}`` at the cursor (braces removed), or None."""
        self._skip_space()
        if self.i >= len(self.s) or self.s[self.i] != "{":
            return None
        depth = 0
        start = self.i + 1
        k = self.i
        while k < len(self.s):
            c = self.s[k]
            if c == "\\":
                k += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    self.i = k + 1
                    return self.s[start:k]
            k += 1
        self.warn("a '{' is never closed")
        self.i = len(self.s)
        return self.s[start:]

    def _raw_optional(self) -> str | None:
        self._skip_space()
        if self.i >= len(self.s) or self.s[self.i] != "[":
            return None
        end = self.s.find("]", self.i)
        if end < 0:
            return None
        text = self.s[self.i + 1 : end]
        self.i = end + 1
        return text

    def _sub_parse(self, source: str) -> Row:
        """Parse ``source`` (a macro body or raw argument) with this parser's state."""
        saved = self.s, self.i
        self.s, self.i = source, 0
        self.depth += 1
        try:
            self._check()
            row = self.expr(frozenset())
            if self.i < len(self.s):
                rest = self.s[self.i :]
                self.i = len(self.s)
                row.items.extend(self._sub_parse(rest.lstrip("}&") or "").items)
            return row
        finally:
            self.depth -= 1
            self.s, self.i = saved

    # --- rows --------------------------------------------------------------------------

    def expr(self, stops: frozenset[str]) -> Row:
        """Parse items until the end, a ``}`` or a stop command (``right``, ``end``, ``&``)."""
        self.depth += 1
        self._check()
        items: list[Node] = []
        s = self.s
        try:
            while True:
                self._skip_space()
                if self.i >= len(s):
                    break
                c = s[self.i]
                if c == "}":
                    break
                if c == "&":
                    if "&" in stops:
                        break
                    self.i += 1
                    continue
                if c == "\\":
                    name = self._peek_command()
                    if name in stops or (name == "\\" and "\\\\" in stops):
                        break
                if c in "^_":
                    self.i += 1
                    self._attach_script(items, c)
                    continue
                if c == "'":
                    self.i += 1
                    self._attach_prime(items)
                    continue
                node = self.atom()
                if node is not None:
                    items.append(node)
        finally:
            self.depth -= 1
        return Row(_pair_fences(items))

    def _attach_script(self, items: list[Node], kind: str) -> None:
        arg = self.argument()
        if arg is None:
            self.warn(f"'{kind}' has nothing after it")
            return
        base = items.pop() if items else Row([])
        if isinstance(base, Space) and items:
            base = items.pop()
        if isinstance(base, Scripts) and getattr(base, "sub" if kind == "_" else "sup") is None:
            target = base
        else:
            target = Scripts(base)
        if kind == "_":
            target.sub = arg
        else:
            target.sup = arg
        items.append(target)

    def _attach_prime(self, items: list[Node]) -> None:
        base = items.pop() if items else Row([])
        if isinstance(base, Scripts) and base.sup is None:
            base.primes += 1
            items.append(base)
        else:
            items.append(Scripts(base, primes=1))

    def argument(self) -> Node | None:
        """One argument: a braced group, or a single token (one digit, letter or command)."""
        self._skip_space()
        if self.i >= len(self.s):
            return None
        c = self.s[self.i]
        if c == "{":
            self.i += 1
            row = self.expr(frozenset())
            self._expect_close()
            return row
        if c.isdigit():
            self.i += 1
            return Num(c)
        if c in "}&^_":
            return None
        return self.atom()

    def _expect_close(self) -> None:
        if self.i < len(self.s) and self.s[self.i] == "}":
            self.i += 1
        else:
            self.warn("a '{' is never closed")

    # --- atoms -------------------------------------------------------------------------

    def atom(self) -> Node | None:
        s = self.s
        c = s[self.i]
        if c == "{":
            self.i += 1
            row = self.expr(frozenset())
            self._expect_close()
            return row
        if c.isdigit() or (c == "." and self.i + 1 < len(s) and s[self.i + 1].isdigit()):
            m = _NUMBER_RE.match(s, self.i)
            assert m is not None
            self.i = m.end()
            return Num(m.group())
        if c.isalpha():
            self.i += 1
            return _letter(c)
        if c == "\\":
            return self.command()
        self.i += 1
        if c == "~":
            return Space()
        if c in sym.BINARY:
            spoken, shown = sym.BINARY[c]
            return Op("bin", c, spoken, shown)
        if c in sym.RELATIONS:
            spoken, shown = sym.RELATIONS[c]
            return Op("rel", c, spoken, shown)
        if c in "([":
            return Op("open", c, c, c)
        if c in ")]":
            return Op("close", c, c, c)
        if c == "|":
            return Op("ord", "|", "|", "|")
        if c in sym.PUNCT:
            spoken, shown = sym.PUNCT[c]
            return Op("punct", c, spoken, shown)
        if c in "$#%":
            return None
        if c.isspace():
            return None
        # any other character (Unicode maths typed directly): keep it as a symbol
        return _unicode_symbol(c)

    def command(self) -> Node | None:
        name = self._read_command()
        if name in self.macros:
            return self._expand(name)
        if name == "\\":
            return Op("punct", ";", ";", ";")
        if name in ("{", "}"):
            return Op("open" if name == "{" else "close", name, name, sym.FENCES[name][1])
        if name == "|":
            return Op("ord", "‖", "‖", "‖")
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            num, den = self.argument(), self.argument()
            if num is None or den is None:
                self.warn(f"\\{name} needs two arguments")
            return Frac(num or Row([]), den or Row([]))
        if name in ("binom", "dbinom", "tbinom"):
            top, bottom = self.argument(), self.argument()
            return Frac(top or Row([]), bottom or Row([]), "binom")
        if name == "sqrt":
            index = self._raw_optional()
            body = self.argument()
            if body is None:
                self.warn("\\sqrt needs an argument")
            return Root(body or Row([]), self._sub_parse(index) if index else None)
        if name == "left":
            return self._left()
        if name in ("right", "middle"):
            self._delimiter()
            return None
        if name == "begin":
            return self._environment()
        if name == "end":
            env = _ENV_RE.match(self.s, self.i)
            if env:
                self.i = env.end()
            self.warn("\\end without \\begin")
            return None
        if name in sym.TEXT_COMMANDS:
            return self._text()
        if name == "ce" or name == "pu":
            raw = self._raw_group() or ""
            return parse_chem(raw, self._sub_parse)
        if name in ("operatorname", "mathop"):
            raw_name = self._raw_group()
            if raw_name is None:
                arg = self.argument()
                return arg
            return _named_operator(raw_name.strip())
        if name in sym.STYLES:
            return self._styled(sym.STYLES[name])
        if name in sym.ACCENTS:
            body = self.argument()
            return Accent(name, body or Row([]))
        if name in ("def", "gdef", "edef", "newcommand", "renewcommand", "providecommand", "let"):
            self._define(name)
            return None
        if name in ("pmod", "bmod", "mod", "pod"):
            if name == "bmod":
                return Op("bin", "bmod", "mod", "mod")
            arg = self.argument()
            return Special("pmod" if name != "mod" else "mod", [arg or Row([])])
        if name in ("overset", "stackrel", "underset"):
            over, base = self.argument(), self.argument()
            if name == "underset" and base is not None:
                return Scripts(base, sub=over)
            return _overset(over, base)
        if name == "substack":
            raw = self._raw_group() or ""
            return self._sub_parse(raw.replace("\\\\", ","))
        if name in ("xrightarrow", "xleftarrow", "xRightarrow"):
            self._raw_optional()
            self._raw_group()
            return Op("rel", "to", "to", "→")
        if name == "not":
            return self._negated()
        if name in ("mathbin", "mathrel", "mathord", "mathpunct", "mathinner", "mathopen"):
            return self.argument()
        if name in ("textcolor", "colorbox"):
            self._raw_group()
            return self.argument()
        if name in _ONE_ARG_IGNORED:
            self._raw_group()
            return None
        if name in _ARG_KEPT:
            return self.argument()
        if name in ("kern", "mkern", "mskip", "hskip"):
            m = _DIMENSION_RE.match(self.s, self.i)
            if m:
                self.i = m.end()
            return None
        if name in ("quad", "qquad"):
            return Space(wide=True)
        if name in sym.SPACES:  # spacing and sizing commands (\big, \left, ...)
            return Space() if name in (",", ":", ";", " ", ">", "enspace") else None
        if name in sym.DOTS:
            return Dots(name, sym.DOTS[name])
        if name in sym.GREEK:
            spoken, shown = sym.GREEK[name]
            return Ident(spoken, shown)
        if name in sym.BIG_OPERATORS:
            spoken, shown = sym.BIG_OPERATORS[name]
            return BigOp(name, spoken, shown)
        if name == "arg" and self._at_next_command({"max", "min"}):
            which = self._read_command()
            spoken, shown = sym.LIMIT_FUNCTIONS["arg" + which]
            return Func("arg" + which, spoken, shown, limits=True)
        if name in sym.LIMIT_FUNCTIONS:
            spoken, shown = sym.LIMIT_FUNCTIONS[name]
            return Func(name, spoken, shown, limits=True)
        if name in sym.FUNCTIONS:
            spoken, shown = sym.FUNCTIONS[name]
            return Func(name, spoken, shown)
        if name in sym.RELATIONS:
            spoken, shown = sym.RELATIONS[name]
            return Op("rel", name, spoken, shown)
        if name in sym.BINARY and name not in ("circ", "star", "bullet", "ast"):
            spoken, shown = sym.BINARY[name]
            return Op("bin", name, spoken, shown)
        if name in sym.PREFIX:
            spoken, shown = sym.PREFIX[name]
            return Op("prefix", name, spoken, shown)
        if name in sym.IDENTS:
            spoken, shown = sym.IDENTS[name]
            return Ident(spoken, shown)
        if name in sym.FENCES:
            key, shown = sym.FENCES[name]
            kind = "open" if key in sym.OPENERS else "close" if key in ")]}⟩⌋⌉" else "ord"
            return Op(kind, key, key, shown)
        if name in ("colon",):
            return Op("punct", ":", "colon", ":")
        if name in ("lim",):
            return Func(name, "the limit", "lim", limits=True)
        if name == "displaylines":
            raw = self._raw_group() or ""
            return self._sub_parse(raw)
        self.warn(f"unknown command \\{name}")
        return Unknown(name)

    # --- command helpers ------------------------------------------------------------------

    def _expand(self, name: str) -> Node | None:
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            self.warn("too many macro expansions (a recursive \\def?); the rest is left out")
            raise _Stop
        count, body = self.macros[name]
        for k in range(1, count + 1):
            arg = self._raw_group()
            if arg is None:
                node_start = self.i
                self.argument()
                arg = self.s[node_start : self.i]
            body = body.replace(f"#{k}", arg)
        return self._sub_parse(body)

    def _define(self, how: str) -> None:
        self._skip_space()
        if how in ("newcommand", "renewcommand", "providecommand"):
            raw = self._raw_group()
            if raw is None and self._peek_command():
                raw = "\\" + self._read_command()
            target = (raw or "").strip().lstrip("\\")
            count_text = self._raw_optional()
            count = int(count_text) if count_text and count_text.strip().isdigit() else 0
            body = self._raw_group() or ""
        elif how == "let":
            target = self._read_command() if self._peek_command() else ""
            self._skip_space()
            if self.i < len(self.s) and self.s[self.i] == "=":
                self.i += 1
            self._skip_space()
            body = "\\" + self._read_command() if self._peek_command() else ""
            count = 0
        else:
            target = self._read_command() if self._peek_command() else ""
            params = re.match(r"(?:#\d)*", self.s[self.i :])
            count = len(params.group()) // 2 if params else 0
            self.i += len(params.group()) if params else 0
            body = self._raw_group() or ""
        if target:
            self.macros[target] = (min(count, 9), body)

    def _delimiter(self) -> str:
        """Read the delimiter after ``\\left``/``\\right``; its canonical key."""
        self._skip_space()
        if self.i >= len(self.s):
            return ""
        c = self.s[self.i]
        if c == "\\":
            name = self._read_command()
            if name in sym.FENCES:
                return sym.FENCES[name][0]
            if name == "|":
                return "‖"
            return {"{": "{", "}": "}"}.get(name, "")
        self.i += 1
        return sym.FENCES.get(c, ("", ""))[0]

    def _left(self) -> Node:
        opener = self._delimiter()
        body = self.expr(frozenset({"right"}))
        if self._at_command({"right"}):
            self._read_command()
            closer = self._delimiter()
        else:
            self.warn("\\left without \\right")
            closer = sym.CLOSER_OF.get(opener, "")
        return Fenced(opener, closer, body)

    def _text(self) -> Node:
        raw = self._raw_group()
        if raw is None:
            arg = self.argument()
            return arg if arg is not None else Text([])
        parts: list[str | Row] = []
        for k, piece in enumerate(re.split(r"(?<!\\)\$", raw)):
            if k % 2:
                parts.append(self._sub_parse(piece))
            elif piece:
                parts.append(_text_unescape(piece))
        return Text(parts)

    def _styled(self, style: str) -> Node:
        arg = self.argument()
        if arg is None:
            return Row([])
        if style == "roman" or style == "operator":
            letters = _plain_letters(arg)
            if letters and len(letters) > 1 and letters in sym.FUNCTIONS:
                spoken, shown = sym.FUNCTIONS[letters]
                return Func(letters, spoken, shown)
            if letters and letters in sym.LIMIT_FUNCTIONS:
                spoken, shown = sym.LIMIT_FUNCTIONS[letters]
                return Func(letters, spoken, shown, limits=True)
        return Styled(style, arg)

    def _negated(self) -> Node | None:
        node = self.atom() if self.i < len(self.s) else None
        if isinstance(node, Op) and node.kind == "rel":
            negations = {"=": "neq", "in": "notin", "subset": "nsubset", "<": "nless"}
            key = negations.get(node.key, "")
            if key in sym.RELATIONS:
                spoken, shown = sym.RELATIONS[key]
                return Op("rel", key, spoken, shown)
            return Op("rel", "not " + node.key, "not " + node.spoken, node.display + "\u0338")
        return node

    def _environment(self) -> Node:
        m = _ENV_RE.match(self.s, self.i)
        if not m:
            self.warn("\\begin without an environment name")
            return Row([])
        self.i = m.end()
        env = m.group(1).rstrip("*")
        if env in ("array", "subarray", "alignat", "alignedat"):
            self._raw_group()  # column spec or column count
        if env == "equation" or env == "displaymath":
            row = self.expr(frozenset({"end"}))
            self._end(env)
            return row
        rows: list[list[Row]] = [[]]
        while True:
            cell = self.expr(frozenset({"&", "\\\\", "end"}))
            rows[-1].append(cell)
            self._skip_space()
            if self.i >= len(self.s):
                self.warn(f"\\begin{{{env}}} is never ended")
                break
            if self.s[self.i] == "&":
                self.i += 1
                continue
            name = self._peek_command()
            if name == "\\":
                self._read_command()
                self._raw_optional()  # \\[2pt]
                rows.append([])
                while self._at_command({"hline", "midrule", "toprule", "bottomrule"}):
                    self._read_command()
                    self._skip_space()
                continue
            if name == "end":
                self._end(env)
                break
            if self.i < len(self.s) and self.s[self.i] == "}":
                self.warn(f"unexpected '}}' inside {env}")
                self.i += 1
                continue
            break
        rows = [r for r in rows if any(cell.items for cell in r)]
        return Table(env, rows)

    def _end(self, env: str) -> None:
        if self._at_command({"end"}):
            self._read_command()
            m = _ENV_RE.match(self.s, self.i)
            if m:
                self.i = m.end()
                if m.group(1).rstrip("*") != env:
                    self.warn(f"\\begin{{{env}}} ended by \\end{{{m.group(1)}}}")
        else:
            self.warn(f"\\begin{{{env}}} is never ended")


# --- helpers ---------------------------------------------------------------------------


def _letter(c: str) -> Ident:
    return Ident(c, c, latin=c.isascii())


_UNICODE_GREEK = {shown: spoken for spoken, shown in sym.GREEK.values()}
_UNICODE_OPS = {
    **{shown: ("rel", key, spoken) for key, (spoken, shown) in sym.RELATIONS.items()},
    **{shown: ("bin", key, spoken) for key, (spoken, shown) in sym.BINARY.items()},
}


def _unicode_symbol(c: str) -> Node:
    if c in _UNICODE_GREEK:
        return Ident(_UNICODE_GREEK[c], c)
    if c in _UNICODE_OPS:
        kind, key, spoken = _UNICODE_OPS[c]
        return Op(kind, key, spoken, c)
    if c == "°":
        return Ident("degrees", "°")
    if c == "∞":
        return Ident("infinity", "∞")
    return Ident(c, c)


def _text_unescape(text: str) -> str:
    return re.sub(r"\\([%$&#_{} ])", r"\1", text).replace("~", " ")


def _plain_letters(node: Node) -> str | None:
    """The letters of a node made only of letters (``tr`` in ``\\mathrm{tr}``), or None."""
    if isinstance(node, Ident) and node.latin:
        return node.display
    if (
        isinstance(node, Row)
        and node.items
        and all(isinstance(it, Ident) and it.latin for it in node.items)
    ):
        return "".join(it.display for it in node.items if isinstance(it, Ident))
    return None


def _named_operator(name: str) -> Node:
    bare = name.replace("\\,", "").replace(" ", "")
    if bare in sym.LIMIT_FUNCTIONS:
        spoken, shown = sym.LIMIT_FUNCTIONS[bare]
        return Func(bare, spoken, shown, limits=True)
    if bare in sym.FUNCTIONS:
        spoken, shown = sym.FUNCTIONS[bare]
        return Func(bare, spoken, shown)
    words = re.sub(r"\\[A-Za-z]+|[{}\\]", "", name).strip() or name
    return Func(bare, words, words)


def _overset(over: Node | None, base: Node | None) -> Node:
    if isinstance(base, Op) and base.key == "=":
        letters = _plain_letters(over) if over is not None else None
        if over is not None and (letters in ("def", "d") or isinstance(over, Text | Styled)):
            return Op("rel", "coloneqq", "is defined as", "≝")
    if base is None:
        return Row([])
    return Scripts(base, sup=over)


def _as_fence(item: Node) -> tuple[Op, Scripts | None] | None:
    """The fence operator an item is (maybe carrying scripts: ``\\|x\\|_2``), or None."""
    if isinstance(item, Op) and item.kind in ("open", "close", "ord"):
        return item, None
    if (
        isinstance(item, Scripts)
        and isinstance(item.base, Op)
        and item.base.kind in ("close", "ord")
    ):
        return item.base, item
    return None


def _pair_fences(items: list[Node]) -> list[Node]:
    """Turn paired fence operators of one row into :class:`Fenced` nodes."""
    if not any(_as_fence(it) for it in items):
        return items
    out: list[Node] = []
    stack: list[tuple[int, str]] = []  # (index in out of the opener, key)

    def close(start: int, key: str, closer: str, wrapper: Scripts | None) -> None:
        fenced = Fenced(key, closer, Row(_pair_fences(out[start + 1 :])))
        if wrapper is not None:
            wrapper.base = fenced
            out[start:] = [wrapper]
        else:
            out[start:] = [fenced]

    for item in items:
        fence = _as_fence(item)
        if fence is None:
            out.append(item)
            continue
        op, wrapper = fence
        if op.key in ("|", "‖") and op.kind == "ord":
            if stack and stack[-1][1] == op.key and stack[-1][0] < len(out) - 1:
                start, key = stack.pop()
                close(start, key, key, wrapper)
                continue
            if wrapper is None:
                stack.append((len(out), op.key))
            out.append(item)
            continue
        if op.kind == "open" and wrapper is None:
            stack.append((len(out), op.key))
            out.append(item)
            continue
        if op.kind == "close":
            opener = {")": "(", "]": "[", "}": "{", "⟩": "⟨", "⌋": "⌊", "⌉": "⌈"}.get(op.key)
            match = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][1] == opener), None)
            if match is not None:
                start, key = stack[match]
                del stack[match:]
                close(start, key, op.key, wrapper)
                continue
        out.append(item)
    return out


def parse_latex(source: str, *, deadline: float | None = None) -> tuple[Row, list[str]]:
    """Parse ``source`` (no delimiters); return the tree and the warnings."""
    parser = Parser(source, deadline=deadline)
    row = parser.parse()
    return row, parser.warnings


__all__ = ["MAX_DEPTH", "MAX_EXPANSIONS", "Parser", "parse_latex"]

"""A tolerant LaTeX maths parser: source in, a :mod:`ssml.latex.nodes` tree out.

Rules:

* It never raises on bad input. Missing braces, unknown commands, unbalanced
  ``\\left``/``\\right`` and unfinished environments are read as well as they can be, and
  each problem is recorded in :attr:`Parser.warnings`.
* Work is linear in the source and bounded, whatever its shape:

  - **Depth.** Every level of nesting (a braced group, a command's argument, a
    ``\\left...\\right``, an environment, a macro body, a pair of fences, a script on a
    script) counts; past :data:`MAX_DEPTH` levels the inside of that level is skipped in
    one linear scan and read as :class:`~ssml.latex.nodes.Elided` ("and so on"), the
    outer levels are kept, and one warning says so. So no later stage recurses deeper
    than that, and Python's recursion limit is never in play.
  - **Macros.** At most :data:`MAX_EXPANSIONS` expansions (``\\def``, ``\\newcommand``)
    and :data:`MAX_EXPANSION_CHARS` characters of expanded text; past either, the reader
    keeps what it has and warns.
  - **Time.** With a :class:`~ssml.latex.budget.Budget` (this thread's CPU clock, so a
    stall of a busy machine never changes what a formula reads as), a parse that runs
    past it stops, keeps what it has read so far and warns.
  - Fences pair in one pass with a per-kind count of open fences (no rescans of the
    stack), and skipping, groups and macro parameters use compiled scans, never
    slices of the rest of the source.
* Letters are single identifiers (``ab`` is ``a`` times ``b``); digits with one decimal
  point make a number (``9.8``), except as an unbraced argument (``\\frac12``).
* Plain ``( ) [ ] \\{ \\} | \\|`` that pair up within one row become :class:`Fenced`
  nodes; unpaired ones stay operators (``[0, 1)``).
"""

from __future__ import annotations

import re

from ssml.latex import symbols as sym
from ssml.latex.budget import Budget
from ssml.latex.chem import parse_chem
from ssml.latex.nodes import (
    Accent,
    BigOp,
    Dots,
    Elided,
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
MAX_EXPANSION_CHARS = 8000
MAX_WARNINGS = 8
#: look at the clock once per this many items of a row
_ITEMS_PER_CHECK = 32

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_CMD_RE = re.compile(r"\\([A-Za-z]+)\*?|\\(.)", re.S)
_ENV_RE = re.compile(r"\s*\{([A-Za-z*]+)\}")
_DIMENSION_RE = re.compile(r"\s*-?[\d.]*\s*(?:em|ex|mu|pt|px|cm|mm|in)?")
_PARAMS_RE = re.compile(r"(?:#\d)*")
_GROUP_MARK_RE = re.compile(r"[{}]|\\.", re.S)
_SKIP_MARK_RE = re.compile(r"[{}&%]|\\(?:[A-Za-z]+|.)", re.S)
_CLOSES = {"end": "begin", "right": "left"}
_SKIP_STOPS = {"&": "&", "\\\\": "\\\\"}  # a row's other stops, as written
_TOO_DEEP = (
    f"the formula is nested too deeply (more than {MAX_DEPTH} levels): its outer levels "
    "are read and what is deeper is said as 'and so on'"
)
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


class Parser:
    """Parse one formula: ``Parser(source).parse()``; problems go to ``warnings``."""

    def __init__(self, source: str, *, budget: Budget | None = None) -> None:
        self.s = source
        self.i = 0
        self.warnings: list[str] = []
        self.depth = 0
        self.macros: dict[str, tuple[int, str]] = {}
        self.expansions = 0
        self.expanded_chars = 0
        self.budget = budget
        self.stopped = False
        self.stops: frozenset[str] = frozenset()  # where the row being read ends

    # --- entry -------------------------------------------------------------------------

    def parse(self) -> Row:
        row = self.expr(frozenset())
        while self.i < len(self.s):  # stray closers at top level: skip and go on
            self.warn(f"unexpected {self.s[self.i : self.i + 6]!r}")
            self.i += 1 if self.s[self.i] != "\\" else len(self._peek_command() or "\\") + 1
            row.items.extend(self.expr(frozenset()).items)
        return row

    def warn(self, message: str) -> None:
        if self.stopped or len(self.warnings) >= MAX_WARNINGS or message in self.warnings:
            return
        self.warnings.append(message)

    # --- low level -----------------------------------------------------------------------

    def _stop(self, message: str) -> None:
        """Stop reading: keep what has been read, skip the rest of the source."""
        self.warn(message)
        self.stopped = True
        self.i = len(self.s)

    def _out_of_time(self) -> bool:
        if self.budget is not None and not self.stopped and self.budget.expired():
            self._stop("the formula took too long to read; the rest is left out")
        return self.stopped

    def _too_deep(self) -> Elided:
        """Skip the rest of the row being read (one linear scan) and stand in for it."""
        self.warn(_TOO_DEEP)
        self._skip_row(self.stops)
        return Elided()

    def _skip_row(self, stops: frozenset[str]) -> None:
        """Move the cursor to where a row read with ``stops`` would end, without parsing.

        Balanced ``{...}``, ``\\begin...\\end`` and ``\\left...\\right`` inside are passed
        over; it stops at an unbalanced ``}`` or, outside any of those, at a stop.
        """
        s = self.s
        braces = 0
        opened = {"begin": 0, "left": 0}  # \\begin and \\left not closed yet
        pos = self.i
        while (m := _SKIP_MARK_RE.search(s, pos)) is not None:
            token = m.group()
            pos = m.end()
            outside = braces == 0 and not any(opened.values())
            name = token[1:] if braces == 0 and token.startswith("\\") else ""
            if token == "{":
                braces += 1
            elif token == "}" and braces:
                braces -= 1
            elif token == "%":
                end = s.find("\n", pos)
                pos = len(s) if end < 0 else end + 1
            elif name in opened:
                opened[name] += 1
            elif name in _CLOSES:
                if outside and name in stops:
                    break
                opened[_CLOSES[name]] = max(0, opened[_CLOSES[name]] - 1)
            elif token == "}" or (outside and _SKIP_STOPS.get(token, "") in stops):
                break
        else:
            self.i = len(s)
            return
        self.i = m.start()

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
        for m in _GROUP_MARK_RE.finditer(self.s, self.i):
            c = m.group()
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    self.i = m.end()
                    return self.s[start : m.start()]
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
        if self.stopped:
            return Row([])
        if self.depth + 1 > MAX_DEPTH:
            self.warn(_TOO_DEEP)
            return Row([Elided()])
        saved = self.s, self.i, self.stops
        self.s, self.i, self.stops = source, 0, frozenset()
        self.depth += 1
        try:
            row = self.expr(frozenset())
            while self.i < len(self.s):  # a stray '}': skip it and read on
                self.i += 1
                row.items.extend(self.expr(frozenset()).items)
            return row
        finally:
            self.depth -= 1
            self.s, self.i, self.stops = saved
            if self.stopped:
                self.i = len(self.s)

    # --- rows --------------------------------------------------------------------------

    def expr(self, stops: frozenset[str]) -> Row:
        """Parse items until the end, a ``}`` or a stop command (``right``, ``end``, ``&``)."""
        saved_stops = self.stops
        self.stops = stops
        self.depth += 1
        items: list[Node] = []
        s = self.s
        try:
            if self.depth > MAX_DEPTH:
                return Row([self._too_deep()])
            if self._out_of_time():
                return Row([])
            count = 0
            while True:
                self._skip_space()
                if self.i >= len(s):
                    break
                count += 1
                if count % _ITEMS_PER_CHECK == 0 and self._out_of_time():
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
            self.stops = saved_stops
        return Row(self._pair_fences(items))

    def _pair_fences(self, items: list[Node]) -> list[Node]:
        paired, capped = pair_fences(items, max(1, MAX_DEPTH - self.depth))
        if capped:
            self.warn(_TOO_DEEP)
        return paired

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
        elif isinstance(base, Scripts) and _script_depth(base) + self.depth >= MAX_DEPTH:
            self.warn(_TOO_DEEP)  # x^2^2^2...: each script nests the last one
            items.append(base)
            return
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
        elif isinstance(base, Scripts) and _script_depth(base) + self.depth >= MAX_DEPTH:
            self.warn(_TOO_DEEP)
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
        return self._nested_atom()

    def _nested_atom(self) -> Node | None:
        """An atom one level deeper (an unbraced argument: ``\\hat\\hat x``, ``\\not\\in``)."""
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                return self._too_deep()
            return self.atom()
        finally:
            self.depth -= 1

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
        self.warn(f"unknown command \\{_short(name)}")
        return Unknown(name)

    # --- command helpers ------------------------------------------------------------------

    def _expand(self, name: str) -> Node | None:
        self.expansions += 1
        if self.expansions > MAX_EXPANSIONS:
            self._stop("too many macro expansions (a recursive \\def?); the rest is left out")
            return None
        count, body = self.macros[name]
        for k in range(1, count + 1):
            arg = self._raw_group()
            if arg is None:
                node_start = self.i
                self.argument()
                arg = self.s[node_start : self.i]
            body = body.replace(f"#{k}", arg)
            if len(body) > MAX_EXPANSION_CHARS:
                break
        self.expanded_chars += len(body)
        if self.expanded_chars > MAX_EXPANSION_CHARS:
            self._stop("the macros expand to too much text; the rest is left out")
            return None
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
            params = _PARAMS_RE.match(self.s, self.i)
            count = len(params.group()) // 2 if params else 0
            self.i = params.end() if params else self.i
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
        self._skip_space()
        node = self._nested_atom() if self.i < len(self.s) else None
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


_OPENER_OF = {")": "(", "]": "[", "}": "{", "⟩": "⟨", "⌋": "⌊", "⌉": "⌈"}


def pair_fences(items: list[Node], room: int = MAX_DEPTH) -> tuple[list[Node], bool]:
    """Turn paired fence operators of one row into :class:`Fenced` nodes.

    At most ``room`` pairs nest; openers deeper than that stay operators (and the second
    value says so). Linear: the stack of open fences keeps a count per kind, so a closer
    with no opener of its kind on the stack is known at once, and a search down the stack
    is paid for by the entries it then removes.
    """
    if not any(_as_fence(it) for it in items):
        return items, False
    out: list[Node] = []
    stack: list[tuple[int, str]] = []  # (index in out of the opener, key)
    open_count: dict[str, int] = {}
    capped = False

    def push(key: str) -> None:
        stack.append((len(out), key))
        open_count[key] = open_count.get(key, 0) + 1

    def pop_from(match: int) -> tuple[int, str]:
        for _index, key in stack[match:]:
            open_count[key] -= 1
        start, key = stack[match]
        del stack[match:]
        return start, key

    def close(start: int, key: str, closer: str, wrapper: Scripts | None) -> None:
        inner, _capped = pair_fences(out[start + 1 :], room)  # leftovers never pair
        fenced = Fenced(key, closer, Row(inner))
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
                start, key = pop_from(len(stack) - 1)
                close(start, key, key, wrapper)
                continue
            if wrapper is None:
                if len(stack) < room:
                    push(op.key)
                else:
                    capped = True
            out.append(item)
            continue
        if op.kind == "open" and wrapper is None:
            if len(stack) < room:
                push(op.key)
            else:
                capped = True
            out.append(item)
            continue
        if op.kind == "close":
            opener = _OPENER_OF.get(op.key)
            if opener is not None and open_count.get(opener, 0) > 0:
                match = next(k for k in range(len(stack) - 1, -1, -1) if stack[k][1] == opener)
                start, key = pop_from(match)
                close(start, key, op.key, wrapper)
                continue
        out.append(item)
    return out, capped


def _script_depth(node: Scripts) -> int:
    """How many scripts are stacked on one another (``x^2^2`` is 2)."""
    depth = 1
    base = node.base
    while isinstance(base, Scripts) and depth <= MAX_DEPTH:
        depth += 1
        base = base.base
    return depth


def _short(name: str, limit: int = 30) -> str:
    """A command name as quoted in a warning (a 4000-letter command is cut)."""
    return name if len(name) <= limit else name[:limit] + "…"


def parse_latex(source: str, *, budget: Budget | None = None) -> tuple[Row, list[str]]:
    """Parse ``source`` (no delimiters); return the tree and the warnings."""
    parser = Parser(source, budget=budget)
    row = parser.parse()
    return row, parser.warnings


__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANSIONS",
    "MAX_EXPANSION_CHARS",
    "Parser",
    "pair_fences",
    "parse_latex",
]

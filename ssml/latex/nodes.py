"""The tree the LaTeX reader builds: presentation structure with a little meaning.

A formula is a :class:`Row` of nodes. Plain parentheses, brackets, braces, bars and
double bars that pair up are turned into :class:`Fenced` nodes by the parser, so the
speech rules can tell ``f(x)`` (a function applied) from ``2(x + 1)`` (a product).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Node:
    """Base class of every tree node."""


@dataclass
class Num(Node):
    value: str  # "3", "9.8"


@dataclass
class Ident(Node):
    """A variable or named constant: ``spoken`` is its name, ``display`` its character."""

    spoken: str
    display: str
    latin: bool = False  # a single Latin letter as typed (x, A)


@dataclass
class Op(Node):
    """An operator, relation, punctuation mark or unpaired fence.

    ``kind``: ``bin``, ``rel``, ``punct``, ``prefix``, ``open``, ``close`` or ``ord``.
    ``key`` is the LaTeX name or character (``leq``, ``+``, ``(``).
    """

    kind: str
    key: str
    spoken: str
    display: str


@dataclass
class Dots(Node):
    key: str  # ldots, cdots, vdots, ddots
    display: str


@dataclass
class Func(Node):
    """A named function (sin, log, lim, max, or an ``\\operatorname``)."""

    key: str
    spoken: str
    display: str
    limits: bool = False  # lim, max, min, sup, inf, argmax: scripts are limits


@dataclass
class BigOp(Node):
    key: str  # sum, prod, int, ...
    spoken: str
    display: str


@dataclass
class Row(Node):
    items: list[Node] = field(default_factory=list)


@dataclass
class Frac(Node):
    num: Node
    den: Node
    kind: str = "frac"  # frac, binom


@dataclass
class Root(Node):
    body: Node
    index: Node | None = None


@dataclass
class Scripts(Node):
    base: Node
    sub: Node | None = None
    sup: Node | None = None
    primes: int = 0


@dataclass
class Fenced(Node):
    open: str  # canonical: ( [ { | ‖ ⟨ ⌊ ⌈ or ""
    close: str
    body: Row


@dataclass
class Text(Node):
    """``\\text{...}``: words, possibly with inline maths inside (``$C$``)."""

    parts: list[str | Row]


@dataclass
class Styled(Node):
    style: str  # bold, double, script, fraktur, roman, italic, sans, mono, operator
    body: Node


@dataclass
class Accent(Node):
    key: str  # hat, bar, vec, ...
    body: Node


@dataclass
class Table(Node):
    env: str  # bmatrix, pmatrix, cases, aligned, array, ...
    rows: list[list[Row]]


@dataclass
class Chem(Node):
    """A ``\\ce{...}`` reaction or formula, already split into chemistry tokens."""

    body: Row


@dataclass
class Space(Node):
    wide: bool = False  # \quad and wider separate items


@dataclass
class Special(Node):
    """Constructs with a fixed reading: ``pmod`` (modulo n)."""

    kind: str
    args: list[Node]


@dataclass
class Unknown(Node):
    name: str  # an unknown command, read as its name


@dataclass
class Elided(Node):
    """A part left out because the formula is nested too deeply: said "and so on", shown …."""

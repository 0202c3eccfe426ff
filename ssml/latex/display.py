"""Readable Unicode text for a formula tree, for captions: ``x² + y² = z²``.

Rules:

* Letters keep their style where Unicode has it: bold 𝐱 𝐀, double-struck ℝ ℕ, script
  𝓛, fraktur 𝖌, sans-serif 𝖷, monospace; Greek letters and symbols as characters
  (α, ∑, ∫, ≤, ∈, →, ⊤, ∞).
* Exponents and indices use superscript and subscript characters when every character
  has one (x², xᵢ, aᵢⱼ, ℝᵐˣⁿ, e⁻ˣ); otherwise they are set in small brackets:
  ``x⁽…⁾``-style superscript brackets are used when the parts can be raised, else
  ``x₍ₖ₎``-style, and as a last resort ``x↑(…)`` / ``x↓(…)``.
* Fractions are ``a/b`` (``(a + b)/c`` for compound parts), roots ``√x``, ``∛x``,
  ``√(x + 1)``; binomials ``C(n, k)``.
* Binary operators and relations get a space on each side, commas one after.
* Matrices are ``[1 2; 3 4]`` (rows separated by ``;``), cases and aligned rows too.
* Braces of sets are shown as full-width ``｛ ｝`` and no ``\\ $ ^ _ { }`` ever appears,
  so a caption never looks like LaTeX.
* A part the parser left out for depth (:class:`~ssml.latex.nodes.Elided`) is ``…``.

Work is linear in the tree: each node's text is made once (a fraction made its parts'
text twice, to choose between ``½`` and ``a/b`` and again to decide on brackets, which
doubled the work at every level of nesting: 15 s at depth 20), and a row is built in a
list, not by growing a string. With a :class:`~ssml.latex.budget.Budget`, each node
ticks it (:class:`~ssml.latex.budget.OutOfTime` past it).
"""

from __future__ import annotations

import re
import unicodedata

from ssml.latex import symbols as sym
from ssml.latex.budget import Budget
from ssml.latex.nodes import (
    Accent,
    BigOp,
    Chem,
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

_SUP = dict(
    zip(
        "0123456789+-=()nixyzabcdefghjklmoprstuvwABDEGHIJKLMNOPRTUVW−×⊤∘′*αβγδεθιφχ",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣʸᶻᵃᵇᶜᵈᵉᶠᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ⁻ˣᵀ°′*ᵅᵝᵞᵟᵋᶿᶥᵠᵡ",
        strict=True,
    )
)
_SUB = dict(
    zip(
        "0123456789+-=()aehijklmnoprstuvxβγρφχ−",
        "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ₋",
        strict=True,
    )
)
_SUP.update({c: c for c in set(_SUP.values())})
_SUB.update({c: c for c in set(_SUB.values())})
_FORBIDDEN = str.maketrans({"\\": "∖", "$": "＄", "^": "ˆ", "_": "‗", "{": "｛", "}": "｝"})
_COMMON_FRACTIONS = {
    ("1", "2"): "½",
    ("1", "3"): "⅓",
    ("2", "3"): "⅔",
    ("1", "4"): "¼",
    ("3", "4"): "¾",
    ("1", "5"): "⅕",
    ("1", "8"): "⅛",
}


class _Line:
    """Caption text built piece by piece: append, and trim trailing spaces, in O(1)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        if text:
            self.parts.append(text)

    def rstrip(self) -> None:
        parts = self.parts
        while parts:
            last = parts[-1].rstrip()
            if last:
                parts[-1] = last
                return
            parts.pop()

    def endswith(self, suffixes: str | tuple[str, ...]) -> bool:
        return bool(self.parts) and self.parts[-1].endswith(suffixes)

    def tail(self, chars: int) -> str:
        """The last ``chars`` characters (or fewer)."""
        out: list[str] = []
        count = 0
        for part in reversed(self.parts):
            out.append(part)
            count += len(part)
            if count >= chars:
                break
        return "".join(reversed(out))[-chars:]

    def stripped_empty(self) -> bool:
        return not any(p.strip() for p in self.parts)

    def text(self) -> str:
        return "".join(self.parts)


def _styled_char(c: str, style: str) -> str:
    if style == "double":
        special = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}
        if c in special:
            return special[c]
        return _offset(c, 0x1D538, 0x1D552, 0x1D7D8)
    bases = {
        "bold": (0x1D400, 0x1D41A, 0x1D7CE),
        "script": (0x1D4D0, 0x1D4EA, None),
        "fraktur": (0x1D56C, 0x1D586, None),
        "sans": (0x1D5A0, 0x1D5BA, 0x1D7E2),
        "mono": (0x1D670, 0x1D68A, 0x1D7F6),
    }
    if style in bases:
        upper, lower, digit = bases[style]
        return _offset(c, upper, lower, digit)
    return c


def _offset(c: str, upper: int, lower: int, digit: int | None) -> str:
    if "A" <= c <= "Z":
        return chr(upper + ord(c) - ord("A"))
    if "a" <= c <= "z":
        return chr(lower + ord(c) - ord("a"))
    if digit is not None and "0" <= c <= "9":
        return chr(digit + ord(c) - ord("0"))
    return c


def _plain(text: str) -> str:
    """Styled mathematical letters back to plain ones (𝐱 -> x), for scripts."""
    return "".join(
        unicodedata.normalize("NFKC", c) if 0x1D400 <= ord(c) <= 0x1D7FF or c in "ℝℕℤℚℂ" else c
        for c in text
    )


def _raise(text: str, table: dict[str, str], brackets: tuple[str, str]) -> str | None:
    plain = text.replace(" ", "")
    if plain and all(c in table for c in plain):
        return "".join(table[c] for c in plain)
    return None


class Displayer:
    """Turns a parsed formula into caption text; see the module docstring."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.style = ""
        self.budget = budget

    def row(self, items: list[Node]) -> str:
        out = _Line()
        prev: Node | None = None
        for k, it in enumerate(items):
            if isinstance(it, Space):
                if it.wide:
                    out.rstrip()
                    out.add("  ")
                continue
            text = self.node(it)
            if not text:
                continue
            if isinstance(it, Op):
                unary = prev is None or (
                    isinstance(prev, Op) and prev.kind != "close" and prev.key != "!"
                )
                if it.key in ("/", "cdot"):
                    out.rstrip()
                    out.add(text)
                elif it.kind in ("bin", "rel") and not unary:
                    out.rstrip()
                    out.add(f" {text} ")
                elif it.kind == "punct" and it.key in (",", ";", ":"):
                    out.rstrip()
                    out.add(text + " ")
                elif it.kind == "prefix":
                    out.add((" " if out.parts and not out.endswith((" ", "(")) else "") + text)
                else:
                    out.add(text)
            elif (
                isinstance(prev, Frac) and "/" in out.tail(12) and not isinstance(it, Fenced)
            ) or (
                isinstance(prev, Scripts)
                and isinstance(prev.base, Ident)
                and prev.base.display in ("∇", "∂")
                and prev.sub is not None
            ):
                out.add(" " + text)
            elif isinstance(prev, Func) or (
                isinstance(prev, Scripts) and isinstance(prev.base, Func | BigOp)
            ):
                out.rstrip()
                out.add(("" if isinstance(it, Fenced) else " ") + text)
            elif (
                isinstance(prev, Num)
                and (isinstance(it, Text) or (isinstance(it, Styled) and it.style == "roman"))
            ) or (
                prev is not None
                and isinstance(it, Ident)
                and it.display == "d"
                and k + 1 < len(items)
                and isinstance(items[k + 1], Ident | Styled | Scripts)
                and not out.endswith(" ")
            ):
                out.add(" " + text)
            elif isinstance(prev, BigOp) or isinstance(it, Text) or isinstance(prev, Text):
                out.rstrip()
                out.add((" " if not out.stripped_empty() else "") + text)
            elif isinstance(it, Func) and out.parts and not out.endswith((" ", "(")):
                out.add(" " + text)
            else:
                out.add(text)
            prev = it
        return re.sub(r" {3,}", "  ", out.text()).strip()

    def node(self, node: Node) -> str:
        if self.budget is not None:
            self.budget.tick()
        if isinstance(node, Row):
            return self.row(node.items)
        if isinstance(node, Num):
            return "".join(_styled_char(c, self.style) for c in node.value)
        if isinstance(node, Ident):
            return "".join(_styled_char(c, self.style) for c in node.display)
        if isinstance(node, Op):
            return node.display
        if isinstance(node, Dots):
            return node.display
        if isinstance(node, Func | BigOp):
            return node.display
        if isinstance(node, Frac):
            return self._fraction(node)
        if isinstance(node, Root):
            return self._root(node)
        if isinstance(node, Scripts):
            return self._scripts(node)
        if isinstance(node, Fenced):
            open_ = sym.FENCES.get(node.open, (node.open, node.open))[1]
            close = sym.FENCES.get(node.close, (node.close, node.close))[1]
            return f"{open_}{self.node(node.body)}{close}"
        if isinstance(node, Text):
            parts = [p if isinstance(p, str) else self.node(p) for p in node.parts]
            return " ".join(" ".join(parts).split())
        if isinstance(node, Styled):
            saved = self.style
            if node.style not in ("roman", "italic", "operator"):
                self.style = node.style
            try:
                return self.node(node.body)
            finally:
                self.style = saved
        if isinstance(node, Accent):
            body = self.node(node.body)
            mark = sym.ACCENTS.get(node.key, ("", "", False))[1]
            if len(body) == 1 or (len(body) == 2 and 0xD800 <= ord(body[0]) <= 0xDFFF):
                return body + mark
            return f"({body}){mark}" if len(body) > 1 else body + mark
        if isinstance(node, Table):
            return self._table(node)
        if isinstance(node, Chem):
            return self.row(node.body.items)
        if isinstance(node, Special):
            arg = self.node(node.args[0]) if node.args else ""
            return f" (mod {arg})" if node.kind == "pmod" else f" mod {arg}"
        if isinstance(node, Unknown):
            return node.name
        if isinstance(node, Elided):
            return "…"
        return ""

    def _wrap(self, node: Node) -> str:
        text = self.node(node)
        return self._wrapped(node, text)

    def _wrapped(self, node: Node, text: str) -> str:
        """``text`` (the text of ``node``) in brackets when it is more than one unit."""
        if " " not in text and "/" not in text:
            return text
        inner = node.items[0] if isinstance(node, Row) and len(node.items) == 1 else node
        if isinstance(inner, Fenced):
            return text
        return f"({text})"

    def _fraction(self, frac: Frac) -> str:
        num, den = self.node(frac.num), self.node(frac.den)
        if frac.kind == "binom":
            return f"C({num}, {den})"
        if (num, den) in _COMMON_FRACTIONS:
            return _COMMON_FRACTIONS[(num, den)]
        return f"{self._wrapped(frac.num, num)}/{self._wrapped(frac.den, den)}"

    def _root(self, root: Root) -> str:
        body = self._wrap(root.body)
        if root.index is None:
            return f"√{body}"
        index = self.node(root.index)
        if index == "3":
            return f"∛{body}"
        if index == "4":
            return f"∜{body}"
        raised = _raise(index, _SUP, ("⁽", "⁾")) or f"({index})"
        return f"{raised}√{body}"

    def _script_text(self, node: Node, table: dict[str, str], up: bool) -> str:
        text = self.node(node)
        raised = _raise(text, table, ("", "")) or _raise(_plain(text), table, ("", ""))
        if raised is not None:
            return raised
        bracket_open, bracket_close = ("⁽", "⁾") if up else ("₍", "₎")
        return f"{bracket_open}{text.replace(' ', '')}{bracket_close}"

    def _scripts(self, node: Scripts) -> str:
        base = self.node(node.base)
        if isinstance(node.base, Frac | Row) and len(base) > 1 and " " in base:
            base = f"({base})"
        out = base + {0: "", 1: "′", 2: "″", 3: "‴"}.get(node.primes, "′" * node.primes)
        if node.sub is not None:
            out += self._script_text(node.sub, _SUB, up=False)
        if node.sup is not None:
            sup = node.sup
            inner = sup.items[0] if isinstance(sup, Row) and len(sup.items) == 1 else sup
            if isinstance(inner, Ident) and inner.display in ("∘", "°"):
                out += "°"
            elif isinstance(inner, Ident) and inner.display == "′":
                out += "′"
            else:
                out += self._script_text(sup, _SUP, up=True)
        return out

    def _table(self, table: Table) -> str:
        rows = []
        matrix = table.env.endswith("matrix") or table.env in ("array", "subarray")
        for cells in table.rows:
            if matrix:
                rows.append(" ".join(t for t in (self.node(c) for c in cells) if t))
            elif table.env in ("cases", "dcases", "rcases"):
                rows.append("  ".join(t for t in (self.node(c) for c in cells) if t))
            else:  # aligned rows: the cells are one expression split at alignment points
                parts: list[str] = []
                current: list[Node] = []
                for cell in cells:
                    if not cell.items and current:
                        parts.append(self.row(current))
                        current = []
                    current.extend(cell.items)
                if current:
                    parts.append(self.row(current))
                rows.append("  ".join(p for p in parts if p))
        body = "; ".join(r for r in rows if r)
        fences = {
            "bmatrix": ("[", "]"),
            "pmatrix": ("(", ")"),
            "Bmatrix": ("｛", "｝"),
            "vmatrix": ("|", "|"),
            "Vmatrix": ("‖", "‖"),
            "cases": ("｛ ", ""),
            "dcases": ("｛ ", ""),
        }
        open_, close = fences.get(table.env, ("[", "]") if table.env == "matrix" else ("", ""))
        return f"{open_}{body}{close}"


def display(row: Row, budget: Budget | None = None) -> str:
    """The caption text of a parsed formula (never contains ``\\ $ ^ _ { }``).

    With a ``budget``, raises :class:`~ssml.latex.budget.OutOfTime` once it is spent.
    """
    text = Displayer(budget).row(row.items)
    return unicodedata.normalize("NFC", text.translate(_FORBIDDEN))

"""``\\ce{...}`` (mhchem) formulas and reactions, read the way a chemistry teacher does.

* Element symbols are spelled letter by letter (``NaCl`` -> "N a C l"); counts follow
  their element (``H2O`` -> "H 2 O"); a leading number is a coefficient ("2 H 2").
* Charges: ``Na+`` -> "N a plus", ``SO4^2-`` -> "S O 4, 2 minus".
* States: ``(s)`` solid, ``(l)`` liquid, ``(g)`` gas, ``(aq)`` aqueous.
* Arrows: ``->`` "yields", ``<-`` "is formed from", ``<=>``/``<->`` "is in equilibrium
  with"; a ``+`` between species is "plus"; ``^`` and ``v`` after a species are "gas
  given off" and "precipitate".

Display uses subscript and superscript digits: ``2H₂ + O₂ → 2H₂O``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ssml.latex.nodes import Chem, Ident, Node, Num, Op, Row, Scripts

_ARROWS = {
    "->": ("yields", "→"),
    "→": ("yields", "→"),
    "<-": ("is formed from", "←"),
    "<=>": ("is in equilibrium with", "⇌"),
    "<->": ("is in equilibrium with", "↔"),
    "<=>>": ("is in equilibrium with", "⇌"),
    "<<=>": ("is in equilibrium with", "⇌"),
    "=": ("yields", "="),
}
_STATES = {"s": "solid", "l": "liquid", "g": "gas", "aq": "aqueous"}
_ARROW_RE = re.compile(r"(<=>>|<<=>|<=>|<->|->|<-|→)(\[[^\]]*\])*")
_TOKEN_RE = re.compile(
    r"(?P<state>\((?:s|l|g|aq)\))"
    r"|(?P<element>[A-Z][a-z]?)"
    r"|(?P<count>\d+)"
    r"|(?P<charge>\^\{?[0-9]*[+-]\}?|\^\d*[+-]?)"
    r"|(?P<open>[(\[])|(?P<close>[)\]])"
    r"|(?P<dot>[*·.])"
    r"|(?P<math>\$[^$]*\$)"
    r"|(?P<sign>[+-]+)"
    r"|(?P<other>.)"
)


def _charge(text: str) -> Row:
    text = text.strip("^{}")
    digits = text.rstrip("+-")
    signs = text[len(digits) :] or "+"
    items: list[Node] = [Num(digits)] if digits else []
    if len(signs) > 1 and not digits:
        items.append(Num(str(len(signs))))
    items.append(Op("bin", signs[0], "plus" if signs[0] == "+" else "minus", signs[0]))
    return Row(items)


def _species(word: str, sub_parse: Callable[[str], Row]) -> list[Node]:
    items: list[Node] = []
    coefficient = re.match(r"\d+(?:/\d+)?(?=[A-Z(\[])", word)
    if coefficient:
        items.append(Num(coefficient.group()))
        word = word[coefficient.end() :]
    pos = 0
    while pos < len(word):
        m = _TOKEN_RE.match(word, pos)
        assert m is not None
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        if kind == "element":
            items.append(Ident(" ".join(text), text, latin=True))
        elif kind == "count" and items:
            prev = items.pop()
            if isinstance(prev, Scripts) and prev.sub is None and prev.sup is None:
                prev.sub = Num(text)
                items.append(prev)
            elif isinstance(prev, Scripts) and isinstance(prev.base, Scripts):
                items.extend([prev, Num(text)])  # H2^+2^+2...: never a tower of scripts
            else:
                items.append(Scripts(prev, sub=Num(text)))
        elif kind == "count":
            items.append(Num(text))
        elif kind == "charge" or (kind == "sign" and pos == len(word) and items):
            base = items.pop() if items else Row([])
            if isinstance(base, Scripts) and base.sup is None:
                base.sup = _charge(text)
                items.append(base)
            elif isinstance(base, Scripts) and isinstance(base.base, Scripts):
                items.extend([base, Scripts(Row([]), sup=_charge(text))])
            else:
                items.append(Scripts(base, sup=_charge(text)))
        elif kind == "state":
            items.append(Ident(_STATES[text.strip("()")], text))
        elif kind == "open":
            items.append(Op("open", text, text, text))
        elif kind == "close":
            items.append(Op("close", text, text, text))
        elif kind == "dot":
            items.append(Op("bin", "cdot", "dot", "·"))
        elif kind == "math":
            items.extend(sub_parse(text.strip("$")).items)
        elif kind == "sign":
            items.append(Op("bin", text[0], "plus" if text[0] == "+" else "minus", text[0]))
    return items


def parse_chem(source: str, sub_parse: Callable[[str], Row]) -> Chem:
    """Parse the argument of ``\\ce`` into a :class:`Chem` node."""
    items: list[Node] = []
    for word in source.split():
        arrow = _ARROW_RE.fullmatch(word)
        if arrow or word == "=":
            spoken, shown = _ARROWS[arrow.group(1) if arrow else "="]
            items.append(Op("rel", "arrow", spoken, shown))
        elif word == "+":
            items.append(Op("bin", "+", "plus", "+"))
        elif word == "^":
            items.append(Ident("gas given off", "↑"))
        elif word == "v":
            items.append(Ident("precipitate", "↓"))
        else:
            items.extend(_species(word, sub_parse))
    return Chem(Row(items))

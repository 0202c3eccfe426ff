"""Spoken English for a formula tree, the way a teacher reads a lesson aloud.

The style follows MathJax's ClearSpeak rules where they sound natural and plainer
words where ClearSpeak is verbose. The rules, in the order a reader meets them:

* **Letters and numbers** are read as written ("x", "9.8"); Greek letters by name
  ("alpha", "capital sigma"). Bold, sans-serif and italic change nothing; double-struck
  R, N, Z, Q, C standing alone are "the real numbers", ...; with an exponent they are
  letters ("R n", "R m by n"); script letters are "script L".
* **Operators**: + plus, - minus (negative when unary), × times (by between two sizes:
  "m by n"), · times (dot between vectors), / over (per between units), ± plus or minus.
  Relations: "equals", "is less than or equal to", "is in", "implies", "approaches"
  inside a limit, "given" inside P(...), "such that" inside a set.
* **Powers**: 2 squared, 3 cubed, other whole numbers by ordinal ("to the fourth"), a
  single symbol "to the n", ⊤ or T "transpose", -1 on a matrix or function "inverse",
  ∘ "degrees" (°C "degrees Celsius"), anything longer "to the power ..." closed by a
  comma when more follows.
* **Indices**: a number is read after its base ("x 1", two digits one by one: "a 1 2"),
  anything else with "sub" ("x sub i", "x sub i plus 1"). Chemistry reads counts after
  the element ("H 2 O").
* **Fractions**: small numeric ones by name ("one half", "3 quarters"); two simple parts
  "a over b"; derivatives "d y by d x", "partial f by partial x", "d squared y by d x
  squared"; anything else "the fraction with numerator ... and denominator ...".
  ``\\binom{n}{k}`` is "n choose k".
* **Roots**: "the square root of x", "the cube root of x", "the n-th root of x".
* **Functions**: "sine of x", "sine squared of x", "the natural log of x", "log base 2 of
  8", "f of x", "f prime of x", "f inverse of y", "P of A given B", "the expected value
  of X". A letter followed by parentheses is a function when it usually names one (f, g,
  h, P, ...), when its argument list has commas, or when it carries a prime or an index;
  otherwise the parentheses are "the quantity ..." (a product).
* **Large operators**: "the sum from i equals 1 to n of ...", "the sum over i of ...",
  "the integral from 0 to 1 of x d x", "the limit as x approaches 0 of ...", "the maximum
  over x of ...". The operand runs to the next relation (or + and - for sums, limits and
  products; the differential for integrals) and is closed by a comma when more follows.
* **Fences**: |x| "the absolute value of x", ‖x‖ "the norm of x", ‖x‖₂ "the 2 norm of
  x", ⌊x⌋ "the floor of x", ⌈x⌉ "the ceiling of x", ⟨x, y⟩ "the inner product of x and
  y", {1, 2} "the set 1, 2", {x | x > 0} "the set of x such that x is greater than 0",
  [a, b] "from a to b".
* **Matrices**: "the 2 by 2 matrix with rows: 1, 2; 3, 4", "the column vector x 1, and
  so on, x n"; ⋮ ⋯ ⋱ are "and so on". ``cases`` reads "1 if x is greater than 0; 0
  otherwise"; ``aligned`` rows are separated by semicolons.
* **Units** after a number, written upright (``\\mathrm``, ``\\text``): "9.8 metres per
  second squared", "5 kilograms"; ``\\%`` is "percent".
* Unknown commands are read by their name (and reported as a warning by the parser).

The result never contains LaTeX: :func:`speak` removes any character that is not a
letter, digit, space, or ``, ; . ' -`` (the last defence, for symbols no rule knows).

Work is about linear in the tree: the words of a node are worked out once per reading
context and remembered (a rule may look at a part twice: is it simple, what does it say),
so no shape makes the reading exponential; rows nested more than :data:`MAX_ROW_DEPTH`
deep (chains such as ``\\sum\\sum\\sum...``, where each operator's operand is the rest of
the row) say "and so on" with a warning; and a :class:`~ssml.latex.budget.Budget`, when
given, is ticked once per node (:class:`~ssml.latex.budget.OutOfTime` past it).
"""

from __future__ import annotations

import re
from typing import NamedTuple

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
from ssml.numbers import ordinal_word

_FUNCTION_LETTERS = frozenset("fghFGHPpqLQ") | {"phi", "psi", "sigma", "ell", "capital phi"}
_FUNCTION_IF_SIMPLE_ARG = frozenset("xyzrstuvwTVNEKC")
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
_FRACTION_NAMES = {
    2: ("half", "halves"),
    3: ("third", "thirds"),
    4: ("quarter", "quarters"),
    5: ("fifth", "fifths"),
    6: ("sixth", "sixths"),
    7: ("seventh", "sevenths"),
    8: ("eighth", "eighths"),
    9: ("ninth", "ninths"),
    10: ("tenth", "tenths"),
}
_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_ORDINAL_SUFFIXES = frozenset({"th", "st", "nd", "rd"})
_SAFE_RE = re.compile(r"[^\w\s,;:.'\-]")
#: rows nested deeper than this are said as "and so on" (the parser caps the tree at 40)
MAX_ROW_DEPTH = 80
_TOO_DEEP = (
    "the formula is nested too deeply to read in full; the deepest parts are said as 'and so on'"
)
#: nodes whose words are remembered (they have parts; leaves are cheaper to redo)
_COMPOSITE = (Row, Frac, Root, Scripts, Fenced, Text, Styled, Accent, Table, Chem, Special)
_SPACES_RE = re.compile(r"\s+")


class _Ctx(NamedTuple):
    """How to read inside a construct (a tuple: cheap to hash as part of a memo key)."""

    limit: bool = False  # inside the subscript of lim/max: \to is "approaches", \in is "in"
    given: bool = False  # inside P(...): | is "given"
    set: bool = False  # inside {...}: | and : are "such that"
    chem: bool = False
    dims: bool = False  # × is "by"


def _unwrap(node: Node) -> Node:
    """A one-item row or a style wrapper's content (for shape tests only)."""
    while True:
        if isinstance(node, Row) and len(node.items) == 1:
            node = node.items[0]
        elif isinstance(node, Styled) and node.style in ("bold", "italic", "sans", "mono"):
            node = node.body
        else:
            return node


def _items(node: Node) -> list[Node]:
    node_items = node.items if isinstance(node, Row) else [node]
    return [it for it in node_items if not isinstance(it, Space)]


def _is_op(node: Node, key: str) -> bool:
    return isinstance(node, Op) and node.key == key


def _is_minus(node: Node) -> bool:
    return isinstance(node, Op) and node.key == "-"


def _integer(node: Node) -> int | None:
    node = _unwrap(node)
    if isinstance(node, Num) and node.value.isdigit():
        return int(node.value)
    return None


def _letters_of(node: Node) -> str | None:
    """The letters of an upright word (``\\mathrm{th}``, ``\\text{nd}``), or None."""
    node = _unwrap(node)
    if isinstance(node, Text):
        text = "".join(p for p in node.parts if isinstance(p, str)).strip()
        return text or None
    if isinstance(node, Styled):
        node = node.body
    if isinstance(node, Ident) and node.latin:
        return node.display
    items = _items(node)
    if items and all(isinstance(it, Ident) and it.latin for it in items):
        return "".join(it.display for it in items if isinstance(it, Ident))
    return None


def _is_ident(node: Node, *names: str) -> bool:
    node = _unwrap(node)
    return isinstance(node, Ident) and (node.display in names or node.spoken in names)


def _is_simple(node: Node) -> bool:
    """Whether a node reads as one short unit (no pause needed around it)."""
    node = _unwrap(node)
    if isinstance(node, Num | Ident | Dots):
        return True
    if isinstance(node, Styled):
        return _is_simple(node.body)
    if isinstance(node, Accent):
        return _is_simple(node.body)
    if isinstance(node, Scripts):
        parts = [p for p in (node.sub, node.sup) if p is not None]
        return _is_simple(node.base) and all(_is_simple(p) or _is_negative_number(p) for p in parts)
    if isinstance(node, Frac):
        return node.kind == "frac" and _numeric_fraction(node) is not None
    if isinstance(node, Root):
        return node.index is None and isinstance(_unwrap(node.body), Num | Ident)
    if isinstance(node, Row):
        items = _items(node)
        if len(items) <= 1:
            return all(_is_simple(it) for it in items)
        if len(items) == 2 and isinstance(items[0], Func) and _is_simple(items[1]):
            return True
        if len(items) == 2 and isinstance(items[1], Op) and items[1].key == "!":
            return _is_simple(items[0])
        return all(isinstance(it, Ident | Num) for it in items) and len(items) <= 3
    return False


def _is_negative_number(node: Node) -> bool:
    items = _items(node)
    return len(items) == 2 and _is_minus(items[0]) and isinstance(items[1], Num | Ident)


def _numeric_fraction(frac: Frac) -> str | None:
    num, den = _integer(frac.num), _integer(frac.den)
    if num is None or den is None or den not in _FRACTION_NAMES or not 1 <= num <= 9:
        return None
    singular, plural = _FRACTION_NAMES[den]
    return f"{_SMALL[num]} {singular if num == 1 else plural}"


def _matrix_like(node: Node) -> bool:
    node = _unwrap(node)
    if isinstance(node, Styled):
        return node.style == "bold" or _matrix_like(node.body)
    if isinstance(node, Ident):
        return node.latin and node.display.isupper()
    if isinstance(node, Scripts):
        return _matrix_like(node.base)
    return isinstance(node, Table | Fenced)


def _is_differential(items: list[Node], k: int) -> bool:
    """Whether ``items[k]`` is the ``d`` of a differential ``d x``."""
    if k + 1 >= len(items):
        return False
    node = items[k]
    if isinstance(node, Styled) and node.style == "roman":
        node = _unwrap(node.body)
    return isinstance(node, Ident) and node.display == "d" and not isinstance(items[k + 1], Op)


def _join_list(parts: list[str]) -> str:
    parts = [p for p in parts if p]
    if "and so on" in parts:
        return ", ".join(parts)
    if len(parts) <= 1:
        return "".join(parts)
    if len(parts) == 2:
        return f"{parts[0]} and {parts[1]}"
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def _split_commas(items: list[Node]) -> list[list[Node]]:
    groups: list[list[Node]] = [[]]
    for it in items:
        if isinstance(it, Op) and it.kind == "punct" and it.key == ",":
            groups.append([])
        else:
            groups[-1].append(it)
    return groups


class Speaker:
    """Turns a parsed formula into words; see the module docstring for the rules."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.warnings: list[str] = []
        self.budget = budget
        self.depth = 0
        # words of a node in a context, worked out once: id -> (node kept alive, ctx, words)
        self._said: dict[tuple[int, _Ctx], tuple[Node, str]] = {}
        self._derivatives: dict[int, tuple[Frac, str | None]] = {}

    # --- rows ----------------------------------------------------------------------------

    def row(self, items: list[Node], ctx: _Ctx) -> str:
        self.depth += 1
        try:
            if self.depth > MAX_ROW_DEPTH:
                if _TOO_DEEP not in self.warnings:
                    self.warnings.append(_TOO_DEEP)
                return "and so on"
            return self._row(items, ctx)
        finally:
            self.depth -= 1

    def _row(self, items: list[Node], ctx: _Ctx) -> str:
        items = [it for it in items if not (isinstance(it, Space) and not it.wide)]
        has_special = any(isinstance(it, Special) for it in items)
        if (
            len(items) == 3
            and isinstance(items[1], Op)
            and items[1].key == "times"
            and all(isinstance(it, Ident | Num) for it in (items[0], items[2]))
            and any(isinstance(it, Ident) for it in (items[0], items[2]))
        ):
            ctx = ctx._replace(dims=True)
        out: list[str] = []
        i = 0
        n = len(items)
        outer = ctx
        while i < n:
            it = items[i]
            if isinstance(it, Op) and it.kind == "prefix" and it.key in ("forall", "exists"):
                ctx = outer._replace(limit=True)
            elif isinstance(it, Op) and it.key == ",":
                ctx = outer
            rest_after = i + 1
            phrase: str | None = None
            compound = False
            base = it.base if isinstance(it, Scripts) else it
            if isinstance(it, Space):
                out.append(",")
                i += 1
                continue
            if isinstance(base, Func):
                phrase, rest_after, compound = self._function(it, items, i + 1, ctx)
            elif isinstance(base, BigOp):
                phrase, rest_after, compound = self._big_operator(it, items, i + 1, ctx)
            elif _is_ident(base, "nabla", "partial") and i + 1 < n:
                phrase, rest_after, compound = self._operator_prefix(it, items, i + 1, ctx)
            elif i + 1 < n and self._applies(it, items[i + 1]):
                phrase, compound = self._application(it, items[i + 1], ctx)
                rest_after = i + 2
            elif (
                isinstance(it, Frac)
                and self._derivative(it) is not None
                and len(_items(it.num)) == 1
                and i + 1 < n
                and not isinstance(items[i + 1], Op)
            ):
                operand, rest_after = self._operand(items, i + 1, stop_at_plus=True)
                phrase = f"{self._derivative(it)} of {self.row(operand, ctx)}"
                compound = True
            elif i > 0 and self._is_unit_start(it, items[i - 1]):
                unit_items, end = self._unit_run(items, i)
                unit = self._units(Row(unit_items), items[i - 1])
                if unit is not None:
                    phrase, rest_after = unit, end
                else:
                    phrase = self.node(it, ctx)
            elif (
                isinstance(it, Num)
                and i + 2 < n
                and _is_op(items[i + 1], "/")
                and (named := _numeric_fraction(Frac(it, items[i + 2]))) is not None
                and (i + 3 >= n or isinstance(items[i + 3], Op))
            ):
                phrase, rest_after = named, i + 3
            elif isinstance(it, Op):
                phrase = self._op(it, items, i, ctx, has_special)
            else:
                if (
                    isinstance(it, Fenced)
                    and it.open == "("
                    and i > 0
                    and self._is_factor(items[i - 1])
                    and len(_items(it.body)) > 1
                ):
                    out.append("times")
                phrase = self.node(it, ctx)
                compound = self._compound(it)
                if _is_ident(it, "∘", "composed with") and isinstance(it, Ident):
                    phrase = "composed with"
            if phrase:
                out.append(phrase)
            if compound and rest_after < n and not self._closes(items, rest_after):
                out.append(",")
            i = rest_after
        return " ".join(out)

    def _closes(self, items: list[Node], k: int) -> bool:
        """Whether ``items[k]`` already ends what came before (no comma needed)."""
        node = items[k]
        if isinstance(node, Op):
            return node.kind in ("rel", "close") or node.key in (",", ";")
        return _is_differential(items, k)

    def _is_factor(self, node: Node) -> bool:
        if isinstance(node, Op):
            return node.key == "!"
        return isinstance(node, Num | Ident | Fenced | Frac | Root | Scripts | Styled)

    def _operand(
        self, items: list[Node], start: int, *, stop_at_plus: bool
    ) -> tuple[list[Node], int]:
        """The items a large operator or limit applies to, and where they end."""
        k = start
        taken: list[Node] = []
        while k < len(items):
            it = items[k]
            if isinstance(it, Op) and (it.kind in ("rel", "punct") or it.key in ("close",)):
                break
            if isinstance(it, Space) and it.wide:
                break
            if stop_at_plus and taken and isinstance(it, Op) and it.key in ("+", "-", "pm", "mp"):
                break
            taken.append(it)
            k += 1
        return taken, k

    def _integrand(self, items: list[Node], start: int) -> tuple[list[Node], int]:
        """The integrand up to its differential (the last one, for nested integrals)."""
        k = start
        taken: list[Node] = []
        pending = 1
        while k < len(items):
            it = items[k]
            if isinstance(it, Op) and it.kind in ("rel", "punct"):
                break
            base = it.base if isinstance(it, Scripts) else it
            if isinstance(base, BigOp) and base.key.endswith("int"):
                pending += 1
            if _is_differential(items, k):
                taken.extend(items[k : k + 2])
                k += 2
                pending -= 1
                if pending <= 0:
                    return taken, k
                continue
            taken.append(it)
            k += 1
        return taken, k

    # --- functions and operators ---------------------------------------------------------

    def _power_words(self, sup: Node | None) -> str:
        if sup is None:
            return ""
        if _is_negative_number(sup) and _integer(_items(sup)[1]) == 1:
            return "inverse"
        words, _compound = self._superscript(sup, None, _Ctx())
        return words

    def _function(
        self, it: Node, items: list[Node], start: int, ctx: _Ctx
    ) -> tuple[str, int, bool]:
        func = it.base if isinstance(it, Scripts) else it
        assert isinstance(func, Func)
        sub = it.sub if isinstance(it, Scripts) else None
        sup = it.sup if isinstance(it, Scripts) else None
        if func.limits:
            name = func.spoken
            if sub is not None:
                condition = self.node(sub, ctx._replace(limit=True))
                name += f" as {condition}" if func.key == "lim" else f" over {condition}"
            operand, end = self._operand(items, start, stop_at_plus=True)
            if not operand:
                return name, end, False
            return f"{name} of {self.row(operand, ctx)}", end, True
        name = func.spoken
        power = self._power_words(sup)
        if power == "inverse":
            name = f"the inverse {name.removeprefix('the ')}"
        elif power:
            name = f"{name} {power}"
        if sub is not None:
            name = name.removeprefix("the ") + f" base {self.node(sub, ctx)}"
        after = ""
        nxt = items[start] if start < len(items) else None
        if isinstance(nxt, Scripts) and isinstance(nxt.base, Fenced) and nxt.base.open == "(":
            arg = _items(nxt.base.body)
            end = start + 1
            if nxt.sub is not None:
                after += f", sub {self.node(nxt.sub, ctx)}"
            if nxt.sup is not None:
                after += ", " + self._superscript(nxt.sup, nxt.base, ctx)[0]
            groups = _split_commas(arg)
            spoken = _join_list([self.row(g, ctx) for g in groups])
            return f"{name} of {spoken}{after}", end, True
        if isinstance(nxt, Fenced) and nxt.open == "(":
            arg = _items(nxt.body)
            end = start + 1
        else:
            arg = []
            end = start
            while end < len(items):
                nxt = items[end]
                if isinstance(nxt, Op | Func | BigOp) or (isinstance(nxt, Space) and nxt.wide):
                    break
                if isinstance(nxt, Scripts) and isinstance(nxt.base, Func | BigOp):
                    break
                arg.append(nxt)
                end += 1
        if not arg:
            return name, end, False
        groups = _split_commas(arg)
        spoken = _join_list([self.row(g, ctx) for g in groups])
        return f"{name} of {spoken}", end, len(arg) > 1 or not _is_simple(arg[0])

    def _big_operator(
        self, it: Node, items: list[Node], start: int, ctx: _Ctx
    ) -> tuple[str, int, bool]:
        big = it.base if isinstance(it, Scripts) else it
        assert isinstance(big, BigOp)
        sub = it.sub if isinstance(it, Scripts) else None
        sup = it.sup if isinstance(it, Scripts) else None
        name = big.spoken
        if sub is not None and sup is not None:
            name += f" from {self.node(sub, ctx)} to {self.node(sup, ctx)}"
        elif sub is not None:
            name += f" over {self.node(sub, ctx._replace(limit=True))}"
        elif sup is not None:
            name += f" to {self.node(sup, ctx)}"
        if big.key.endswith("int"):
            operand, end = self._integrand(items, start)
        else:
            operand, end = self._operand(items, start, stop_at_plus=True)
        if not operand:
            return name, end, False
        return f"{name} of {self.row(operand, ctx)}", end, True

    def _operator_prefix(
        self, it: Node, items: list[Node], start: int, ctx: _Ctx
    ) -> tuple[str, int, bool]:
        """nabla and partial in front of what they act on."""
        base = _unwrap(it.base if isinstance(it, Scripts) else it)
        sub = it.sub if isinstance(it, Scripts) else None
        sup = it.sup if isinstance(it, Scripts) else None
        nxt = items[start]
        is_nabla = _is_ident(base, "nabla")
        if is_nabla and isinstance(nxt, Op) and nxt.key in ("cdot", "times"):
            operand, end = self._operand(items, start + 1, stop_at_plus=True)
            what = "divergence" if nxt.key == "cdot" else "curl"
            return f"the {what} of {self.row(operand, ctx)}", end, len(operand) > 1
        if isinstance(nxt, Op):
            return self.node(it, ctx), start, False
        if is_nabla:
            laplacian = sup is not None and _integer(sup) == 2
            name = "the Laplacian" if laplacian else "the gradient"
        else:
            name = "the partial derivative"
        if sub is not None:
            name += f" with respect to {self.node(sub, ctx)}"
        operand, end = self._operand(items, start, stop_at_plus=True)
        return f"{name} of {self.row(operand, ctx)}", end, True

    def _applies(self, it: Node, nxt: Node) -> bool:
        """Whether ``it`` followed by ``nxt`` is a function applied to arguments."""
        if isinstance(nxt, Scripts) and isinstance(nxt.base, Fenced) and nxt.base.open == "[":
            return _letters_of(it) in ("E", "𝔼") or _is_ident(it, "E", "𝔼")
        if not isinstance(nxt, Fenced):
            return False
        if isinstance(it, Fenced) and any(_is_ident(x, "∘") for x in _items(it.body)):
            return nxt.open == "("
        base = it.base if isinstance(it, Scripts) else it
        core = _unwrap(base)
        if isinstance(core, Styled) and core.style in ("script", "double", "roman", "fraktur"):
            letters = _letters_of(core)
            if letters and len(letters) == 1 and nxt.open == "(":
                return True
        if nxt.open == "[" and isinstance(core, Ident) and core.display in ("E", "P", "𝔼", "ℙ"):
            return True
        if isinstance(base, Styled) and base.style == "double" and _letters_of(base) in ("E", "P"):
            return nxt.open in ("[", "(")
        if nxt.open != "(":
            return False
        if isinstance(it, Scripts) and (it.primes or _is_negative_number(it.sup or Row())):
            return True
        if isinstance(it, Scripts) and it.sub is not None and isinstance(core, Ident):
            return core.display in "fghFGHPpqLuvy" or len(_split_commas(_items(nxt.body))) > 1
        if not isinstance(core, Ident):
            return False
        name = core.display if core.latin else core.spoken
        args = _split_commas(_items(nxt.body))
        if name in _FUNCTION_LETTERS:
            return True
        if len(args) > 1 and core.latin:
            return True
        return name in _FUNCTION_IF_SIMPLE_ARG and len(args[0]) == 1 and _is_simple(args[0][0])

    def _application(self, it: Node, args_node: Node, ctx: _Ctx) -> tuple[str, bool]:
        after = ""
        if isinstance(args_node, Scripts):
            if args_node.sup is not None:
                after = ", " + self._superscript(args_node.sup, args_node.base, ctx)[0]
            args_node = args_node.base
        assert isinstance(args_node, Fenced)
        if isinstance(it, Fenced):
            return f"{self.row(it.body.items, ctx)} of {self.row(args_node.body.items, ctx)}", True
        base = it.base if isinstance(it, Scripts) else it
        letters = _letters_of(base) if isinstance(base, Styled | Ident) else None
        inner_ctx = ctx
        if letters in ("E", "𝔼"):
            name = "the expected value"
        elif letters in ("P", "p", "ℙ", "Pr"):
            name = self.node(it, ctx)
            inner_ctx = ctx._replace(given=True)
        else:
            name = self.node(it, ctx)
        groups = _split_commas(_items(args_node.body))
        spoken = [self.row(g, inner_ctx) for g in groups]
        compound = (
            len(groups) > 1 or len(groups[0]) > 1 or not all(_is_simple(x) for x in groups[0])
        )
        return f"{name} of {_join_list(spoken)}{after}", compound or bool(after)

    def _op(self, op: Op, items: list[Node], i: int, ctx: _Ctx, has_special: bool = False) -> str:
        prev = items[i - 1] if i > 0 else None
        unary = prev is None or (isinstance(prev, Op) and prev.kind != "close")
        if op.key == "-" and unary:
            return "negative"
        if op.key == "+" and unary:
            return "plus"
        if op.key == "times" and ctx.dims:
            return "by"
        if op.key == "cdot" and prev is not None and i + 1 < len(items):
            return "dot" if _is_vector(prev) and _is_vector(items[i + 1]) else "times"
        if op.key in ("to", "rightarrow", "longrightarrow") and ctx.limit:
            return "approaches"
        if op.key == "in" and ctx.limit:
            return "in"
        if op.key in ("mid", "|"):
            if ctx.given:
                return "given"
            return "such that" if ctx.set else "divides"
        if op.key == ":" and op.kind == "punct":
            if ctx.set:
                return "such that"
            if i == 1 and any(isinstance(x, Op) and x.key in ("to", "rightarrow") for x in items):
                return "maps"
            if prev is not None and isinstance(_unwrap(prev), Num):
                return "to"
            return ","
        if op.key == "!":
            return "factorial"
        if op.key == "equiv" and has_special:
            return "is congruent to"
        if op.key in ("(", ")", "[", "]", "{", "}", "⟨", "⟩"):
            return ""
        if op.key == "." and op.kind == "punct":
            return ""
        return op.spoken

    # --- single nodes --------------------------------------------------------------------

    def node(self, node: Node, ctx: _Ctx) -> str:
        if self.budget is not None:
            self.budget.tick()
        if not isinstance(node, _COMPOSITE):
            return self._node(node, ctx)
        key = (id(node), ctx)
        said = self._said.get(key)
        if said is not None and said[0] is node:
            return said[1]
        words = self._node(node, ctx)
        self._said[key] = (node, words)
        return words

    def _node(self, node: Node, ctx: _Ctx) -> str:
        if isinstance(node, Row):
            return self.row(node.items, ctx)
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Ident):
            return node.spoken
        if isinstance(node, Op):
            return self._op(node, [node], 0, ctx)
        if isinstance(node, Dots):
            return "and so on"
        if isinstance(node, Func):
            return node.spoken
        if isinstance(node, BigOp):
            return node.spoken
        if isinstance(node, Frac):
            return self._fraction(node, ctx)
        if isinstance(node, Root):
            return self._root(node, ctx)
        if isinstance(node, Scripts):
            return self._scripts(node, ctx)
        if isinstance(node, Fenced):
            return self._fenced(node, ctx)
        if isinstance(node, Text):
            return self._text(node, ctx)
        if isinstance(node, Styled):
            return self._styled(node, ctx)
        if isinstance(node, Accent):
            return self._accent(node, ctx)
        if isinstance(node, Table):
            return self._table(node, ctx)
        if isinstance(node, Chem):
            return self.row(node.body.items, ctx._replace(chem=True))
        if isinstance(node, Special):
            arg = self.node(node.args[0], ctx) if node.args else ""
            return f"modulo {arg}" if node.kind == "pmod" else f"mod {arg}"
        if isinstance(node, Unknown):
            return re.sub(r"[^A-Za-z]+", " ", node.name).strip()
        if isinstance(node, Elided):
            return "and so on"
        return ""

    def _compound(self, node: Node) -> bool:
        if isinstance(node, Frac):
            return node.kind == "frac" and not (
                (_is_simple(node.num) and _is_simple(node.den)) or self._derivative(node)
            )
        if isinstance(node, Root):
            return not _is_simple(node.body)
        if isinstance(node, Scripts):
            return node.sup is not None and self._superscript(node.sup, node.base, _Ctx())[1]
        if isinstance(node, Fenced):
            return node.open == "(" and len(_items(node.body)) > 1
        return isinstance(node, Table)

    def _fraction(self, frac: Frac, ctx: _Ctx) -> str:
        if frac.kind == "binom":
            return f"{self.node(frac.num, ctx)} choose {self.node(frac.den, ctx)}"
        named = _numeric_fraction(frac)
        if named:
            return named
        derivative = self._derivative(frac)
        if derivative:
            return derivative
        num, den = self.node(frac.num, ctx), self.node(frac.den, ctx)
        if not num or not den:
            return num or den
        if _is_simple(frac.num) and _is_simple(frac.den):
            return f"{num} over {den}"
        return f"the fraction with numerator {num} and denominator {den}"

    def _derivative(self, frac: Frac) -> str | None:
        """``d y / d x`` style fractions, or None (worked out once per fraction)."""
        known = self._derivatives.get(id(frac))
        if known is not None and known[0] is frac:
            return known[1]
        words = self._derivative_words(frac)
        self._derivatives[id(frac)] = (frac, words)
        return words

    def _derivative_words(self, frac: Frac) -> str | None:
        num, den = _items(frac.num), _items(frac.den)
        if not num or not den:
            return None
        head = num[0]
        order = 1
        if isinstance(head, Scripts) and head.sup is not None and head.sub is None:
            order = _integer(head.sup) or 0
            head = head.base
        letter = _unwrap(head)
        if isinstance(letter, Styled):
            letter = _unwrap(letter.body)
        if not isinstance(letter, Ident) or letter.display not in ("d", "∂"):
            return None
        word = "d" if letter.display == "d" else "partial"
        # the denominator: one or more (d|partial) variable [power] pairs
        parts: list[str] = []
        k = 0
        while k < len(den):
            marker = _unwrap(den[k])
            if isinstance(marker, Styled):
                marker = _unwrap(marker.body)
            if not (isinstance(marker, Ident) and marker.display == letter.display):
                return None
            if k + 1 >= len(den):
                return None
            var = den[k + 1]
            parts.append(f"{word} {self.node(var, _Ctx())}")
            k += 2
        if order < 1:
            return None
        power = {2: "squared", 3: "cubed"}.get(order, f"to the {ordinal_word(order)}")
        top = word if order == 1 else f"{word} {power}"
        function = self.row(num[1:], _Ctx()) if len(num) > 1 else ""
        numerator = f"{top} {function}".strip()
        return f"{numerator} by {' '.join(parts)}"

    def _root(self, root: Root, ctx: _Ctx) -> str:
        body = self.node(root.body, ctx)
        if root.index is None:
            return f"the square root of {body}"
        index = _integer(root.index)
        if index == 3:
            return f"the cube root of {body}"
        if index is not None:
            return f"the {ordinal_word(index)} root of {body}"
        return f"the {self.node(root.index, ctx)}-th root of {body}"

    def _scripts(self, node: Scripts, ctx: _Ctx) -> str:
        base = node.base
        core = _unwrap(base)
        # norms with an index: the 2 norm of x
        if isinstance(core, Fenced) and core.open == "‖" and node.sub is not None:
            sub = _letters_of(node.sub)
            which = "Frobenius" if sub == "F" else self.node(node.sub, ctx)
            spoken = f"the {which} norm of {self.row(_items(core.body), ctx)}"
            if node.sup is not None:
                words, _c = self._superscript(node.sup, base, ctx)
                spoken += f", {words}"
            return spoken
        # R^n, R^{m x n}
        if isinstance(core, Styled) and core.style == "double" and node.sup is not None:
            letter = _letters_of(core) or self.node(core.body, ctx)
            return f"{letter} {self.node(node.sup, ctx._replace(dims=True))}"
        # 2^{nd}, i^{th}
        if node.sup is not None and node.sub is None:
            suffix = _letters_of(node.sup)
            if suffix in _ORDINAL_SUFFIXES:
                number = _integer(base)
                if number is not None:
                    return ordinal_word(number)
                return f"{self.node(base, ctx)}-th"
        spoken = self.node(base, ctx)
        if (
            isinstance(core, Fenced)
            and core.open == "("
            and node.sup is not None
            and not spoken.startswith("the quantity")
            and not isinstance(_unwrap(core.body), Num | Ident)
        ):
            spoken = f"the quantity {spoken}"
        if isinstance(core, Fenced) and core.open in ("|", "‖", "(", "[") and node.sup is not None:
            spoken += ","
        if node.primes:
            spoken += " " + {1: "prime", 2: "double prime", 3: "triple prime"}.get(
                node.primes, f"{node.primes} primes"
            )
        if node.sub is not None:
            spoken += self._subscript(node.sub, ctx)
        if node.sup is not None and ctx.chem:
            spoken += (
                f", {self.node(node.sup, ctx)}"
                if node.sub is not None
                else f" {self.node(node.sup, ctx)}"
            )
        elif node.sup is not None:
            words, _compound = self._superscript(node.sup, base, ctx)
            spoken += f" {words}"
        return spoken

    def _subscript(self, sub: Node, ctx: _Ctx) -> str:
        inner = _unwrap(sub)
        if ctx.chem:
            return f" {self.node(sub, ctx)}"
        if isinstance(inner, Num):
            if len(inner.value) == 2 and inner.value.isdigit():
                return f" {inner.value[0]} {inner.value[1]}"
            return f" {inner.value}"
        items = _items(sub)
        if 1 <= len(items) <= 3 and all(
            isinstance(_unwrap(x), Num | Ident) or (_is_simple(x) and not isinstance(x, Scripts))
            for x in items
        ):
            return f" {self.node(sub, ctx)}"
        return f" sub {self.node(sub, ctx)}"

    def _superscript(self, sup: Node, base: Node | None, ctx: _Ctx) -> tuple[str, bool]:
        """Words for an exponent and whether they need closing with a comma."""
        inner = _unwrap(sup)
        number = _integer(sup)
        if number is not None:
            if number == 2:
                return "squared", False
            if number == 3:
                return "cubed", False
            return f"to the {ordinal_word(number)}", False
        if isinstance(inner, Ident):
            if inner.display in ("⊤", "T") or inner.spoken == "transpose":
                return "transpose", False
            if inner.display in ("∘", "°"):
                return "degrees", False
            if inner.display in ("∗", "⋆", "*") or inner.spoken == "star":
                return "star", False
            if inner.display in ("†",):
                return "dagger", False
            if inner.display in ("′",):
                return "prime", False
            return f"to the {inner.spoken}", False
        if isinstance(inner, Op) and inner.key in ("+", "-", "*"):
            return {"+": "plus", "-": "minus", "*": "star"}[inner.key], False
        if _is_negative_number(sup):
            value = _items(sup)[1]
            if (
                _integer(value) == 1
                and base is not None
                and (_matrix_like(base) or _is_ident(base, "f", "g", "h"))
            ):
                return "inverse", False
            return f"to the minus {self.node(value, ctx)}", False
        if isinstance(inner, Frac) and _numeric_fraction(inner):
            return f"to the power {self.node(inner, ctx)}", False
        items = _items(sup)
        if 1 < len(items) <= 3 and all(isinstance(_unwrap(x), Ident | Num) for x in items):
            return f"to the {self.node(sup, ctx)}", True
        words = self.node(sup, ctx)
        return f"to the power {words}", True

    def _fenced(self, fenced: Fenced, ctx: _Ctx) -> str:
        items = _items(fenced.body)
        body_ctx = ctx._replace(set=True) if fenced.open == "{" else ctx
        body = self.row(fenced.body.items, body_ctx)
        kind = fenced.open
        if len(items) == 1 and isinstance(items[0], Op) and kind in ("|", "‖"):
            return "the absolute value" if kind == "|" else "the norm"
        if kind == "|":
            if len(items) == 1 and _matrix_like(items[0]):
                return f"the determinant of {body}"
            return f"the absolute value of {body}"
        if kind == "‖":
            return f"the norm of {body}"
        if kind == "⌊":
            return f"the floor of {body}"
        if kind == "⌈":
            return f"the ceiling of {body}"
        if kind == "⟨":
            groups = _split_commas(items)
            if len(groups) == 2:
                return "the inner product of " + _join_list([self.row(g, ctx) for g in groups])
            return f"the angle brackets {body}"
        if kind == "{":
            if any(isinstance(x, Op) and x.key in ("|", "mid", ":") for x in items):
                return f"the set of {body}"
            if not items:
                return "the empty set"
            return f"the set {body}"
        if kind == "[":
            groups = _split_commas(items)
            if len(groups) == 2 and all(len(g) >= 1 for g in groups):
                return f"from {self.row(groups[0], ctx)} to {self.row(groups[1], ctx)}"
            if len(groups) > 2:
                return "the vector " + ", ".join(self.row(g, ctx) for g in groups)
            return body
        if kind == "(":
            groups = _split_commas(items)
            if len(groups) > 1:
                return ", ".join(self.row(g, ctx) for g in groups)
            if len(items) <= 1 or _is_simple(fenced.body):
                return body
            return f"the quantity {body}"
        return body

    def _text(self, text: Text, ctx: _Ctx) -> str:
        parts = []
        for part in text.parts:
            if isinstance(part, str):
                parts.append(part.strip())
            else:
                parts.append(self.row(part.items, ctx))
        return " ".join(p for p in parts if p)

    def _styled(self, styled: Styled, ctx: _Ctx) -> str:
        letters = _letters_of(styled.body)
        if styled.style == "double" and letters:
            if len(letters) == 1 and letters in sym.DOUBLE_STRUCK_NAMES:
                return sym.DOUBLE_STRUCK_NAMES[letters]
            return letters
        if styled.style == "script" and letters:
            return f"script {' '.join(letters)}"
        if styled.style == "fraktur" and letters:
            return f"fraktur {' '.join(letters)}"
        if styled.style in ("roman", "operator") and letters and len(letters) > 1:
            return letters if letters.lower() == letters or len(letters) > 3 else " ".join(letters)
        return self.node(styled.body, ctx)

    def _accent(self, accent: Accent, ctx: _Ctx) -> str:
        spoken, _mark, before = sym.ACCENTS.get(accent.key, ("", "", False))
        body = self.node(accent.body, ctx)
        if not _is_simple(accent.body):
            body = f"{body},"
        return f"{spoken} {body}" if before else f"{body} {spoken}"

    def _table(self, table: Table, ctx: _Ctx) -> str:
        if table.env in _MATRIX_ENVS:
            return self._matrix(table, ctx)
        if table.env in ("cases", "dcases", "rcases"):
            rows = []
            for cells in table.rows:
                value = self.row(cells[0].items, ctx)
                if len(cells) > 1 and cells[1].items:
                    condition = self.row(cells[1].items, ctx)
                    starts = condition.split(" ", 1)[0].lower()
                    if starts not in ("if", "when", "for", "otherwise", "else", "where"):
                        condition = f"if {condition}"
                    value = f"{value} {condition}"
                rows.append(value)
            return "; ".join(rows)
        rows = []
        for cells in table.rows:
            pieces: list[str] = []
            joined: list[Node] = []
            for number, cell in enumerate(cells):
                if not cell.items and joined:
                    pieces.append(self.row(joined, ctx))
                    joined = []
                    continue
                if number >= 2 and not joined and pieces and number % 2 == 0:
                    pass
                joined.extend(cell.items)
            if joined:
                pieces.append(self.row(joined, ctx))
            rows.append(", ".join(p for p in pieces if p))
        return "; ".join(r for r in rows if r)

    def _matrix(self, table: Table, ctx: _Ctx) -> str:
        rows = table.rows
        prefix = "the determinant of " if table.env in ("vmatrix", "Vmatrix") else ""
        if not rows:
            return prefix + "the empty matrix"
        width = max(len(r) for r in rows)

        def cell(c: Row) -> str:
            return self.row(c.items, ctx)

        def is_dots(c: Row) -> bool:
            items = _items(c)
            return bool(items) and all(isinstance(x, Dots) for x in items)

        if width == 1 and len(rows) > 1:
            return prefix + "the column vector " + ", ".join(cell(r[0]) for r in rows)
        if len(rows) == 1:
            return prefix + "the row vector " + ", ".join(cell(c) for c in rows[0])
        has_dots = any(is_dots(c) for r in rows for c in r)
        spoken_rows = []
        for r in rows:
            if all(is_dots(c) for c in r if c.items):
                spoken_rows.append("and so on")
            else:
                spoken_rows.append(", ".join(cell(c) for c in r))
        if has_dots:
            return prefix + "the matrix with rows: " + "; ".join(spoken_rows)
        return prefix + f"the {len(rows)} by {width} matrix with rows: " + "; ".join(spoken_rows)

    def _is_unit_start(self, node: Node, previous: Node | None = None) -> bool:
        if isinstance(previous, Scripts) and _is_ident(previous.sup or Row(), "∘", "°"):
            return _letters_of(node) in ("C", "F", "K")
        if isinstance(previous, Scripts) and isinstance(previous.base, Num):
            previous = previous.base
        if previous is not None and not isinstance(previous, Num):
            return False
        core = node.base if isinstance(node, Scripts) else node
        return isinstance(core, Text) or (
            isinstance(core, Styled) and core.style in ("roman", "operator")
        )

    def _unit_run(self, items: list[Node], start: int) -> tuple[list[Node], int]:
        """Upright unit pieces from ``start``: ``\\mathrm{m}/\\mathrm{s}^2``."""
        k = start + 1
        while k + 1 < len(items):
            sep, nxt = items[k], items[k + 1]
            if (isinstance(sep, Op) and sep.key in ("/", "cdot") and self._is_unit_start(nxt)) or (
                isinstance(sep, Space) and self._is_unit_start(nxt)
            ):
                k += 2
            else:
                break
        return items[start:k], k

    def _units(self, node: Node, previous: Node) -> str | None:
        """Words for a unit written after a number (``\\,\\mathrm{m/s^2}``), or None."""
        if isinstance(previous, Scripts) and _is_ident(previous.sup or Row(), "∘", "°"):
            letters = _letters_of(node)
            return {"C": "Celsius", "F": "Fahrenheit", "K": "kelvin"}.get(letters or "")
        if isinstance(previous, Scripts) and isinstance(previous.base, Num):
            previous = Num("2")  # 3 x 10^8 m/s: plural
        number = previous if isinstance(previous, Num) else None
        if number is None:
            return None
        plural = number.value not in ("1", "1.0")
        return unit_words(node, plural=plural)


def _is_vector(node: Node) -> bool:
    node = _unwrap(node) if not isinstance(node, Styled) else node
    if isinstance(node, Styled):
        return node.style == "bold"
    if isinstance(node, Accent):
        return node.key in ("vec", "overrightarrow")
    if isinstance(node, Scripts):
        return _is_vector(node.base)
    return False


def _unit_tokens(node: Node) -> list[tuple[str, int]] | None:
    """``m/s^2`` -> [("m", 1), ("s", -2)]; None if it is not a product of units."""
    tokens: list[tuple[str, int]] = []
    sign = 1
    word = ""

    def flush() -> bool:
        nonlocal word
        if word:
            if word not in sym.UNITS:
                return False
            tokens.append((word, sign))
            word = ""
        return True

    def walk(n: Node) -> bool:
        nonlocal sign, word
        if isinstance(n, Styled | Row):
            for child in _items(n.body) if isinstance(n, Styled) else n.items:
                if not walk(child):
                    return False
            return True
        if isinstance(n, Text):
            for part in n.parts:
                if not isinstance(part, str):
                    return False
                for piece in re.split(r"(/|\s+|·)", part):
                    if piece == "/":
                        if not flush():
                            return False
                        sign = -1
                    elif piece and not piece.isspace() and piece != "·":
                        word += piece
                        if not flush():
                            return False
            return True
        if isinstance(n, Ident):
            word += n.display
            return True
        if isinstance(n, Op) and n.key == "/":
            if not flush():
                return False
            sign = -1
            return True
        if isinstance(n, Op) and n.key in ("cdot", "*"):
            return flush()
        if isinstance(n, Scripts) and n.sup is not None:
            if not walk(n.base) or not flush():
                return False
            power = _integer(n.sup)
            if power is None and _is_negative_number(n.sup):
                power = -(_integer(_items(n.sup)[1]) or 1)
            if power is None:
                return False
            name, s = tokens[-1]
            tokens[-1] = (name, s * power)
            return True
        return isinstance(n, Space)

    if not walk(node) or not flush() or not tokens:
        return None
    return tokens


def unit_words(node: Node, *, plural: bool) -> str | None:
    """ "metres per second squared" for ``\\mathrm{m/s^2}``; None if not units."""
    tokens = _unit_tokens(node)
    if tokens is None:
        return None
    top = [(u, p) for u, p in tokens if p > 0]
    bottom = [(u, -p) for u, p in tokens if p < 0]

    def say(units: list[tuple[str, int]], make_plural: bool) -> str:
        words = []
        for k, (unit, power) in enumerate(units):
            singular, many = sym.UNITS[unit]
            word = many if make_plural and k == len(units) - 1 else singular
            if power == 2:
                word += " squared"
            elif power == 3:
                word += " cubed"
            elif power > 3:
                word += f" to the {ordinal_word(power)}"
            words.append(word)
        return " ".join(words)

    spoken = say(top, plural) if top else ""
    if bottom:
        spoken = f"{spoken} per {say(bottom, False)}".strip()
    return spoken


def tidy(text: str) -> str:
    """Collapse spaces, put commas right, and drop anything that is not speech."""
    text = _SAFE_RE.sub(" ", text).replace("_", " ")
    text = _SPACES_RE.sub(" ", text)
    text = re.sub(r"\s+([,;])", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = re.sub(r"^[\s,;]+|[\s,;]+$", "", text)
    text = re.sub(r"([,;])(?=\S)", r"\1 ", text)
    return text.strip()


def speak(row: Row, budget: Budget | None = None) -> tuple[str, list[str]]:
    """The spoken form of a parsed formula and any warnings from reading it.

    With a ``budget``, raises :class:`~ssml.latex.budget.OutOfTime` once it is spent.
    """
    speaker = Speaker(budget)
    return tidy(speaker.row(row.items, _Ctx())), speaker.warnings

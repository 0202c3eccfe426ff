"""MathML (presentation, as in HTML and EPUB) to LaTeX, for the same reading path.

:func:`math_source` picks, for a ``<math>`` element: its TeX annotation
(``<annotation encoding="application/x-tex">``) if there is one, else its ``alttext`` when
that is LaTeX, else :func:`mathml_to_latex` of its presentation markup. Elements:
``mi`` (multi-letter names become ``\\mathrm``/known functions), ``mn``, ``mo``,
``mtext``, ``mrow``, ``mfrac``, ``msqrt``, ``mroot``, ``msup``, ``msub``, ``msubsup``,
``munder``/``mover``/``munderover`` (limits, accents), ``mfenced``, ``mtable``
(a matrix), ``mspace``; ``semantics``, ``mstyle``, ``mpadded``, ``menclose`` are
transparent; annotations and ``mphantom`` are left out. Unicode operators are kept as
characters (the LaTeX reader knows them).
"""

from __future__ import annotations

from typing import Any

from ssml.latex import symbols as sym

_TEX_ENCODINGS = ("application/x-tex", "tex", "latex", "text/x-latex", "application/x-latex")
_ACCENT_COMMANDS = {
    "^": "hat",
    "ˆ": "hat",
    "¯": "bar",
    "‾": "overline",
    "→": "vec",
    "~": "tilde",
    "˙": "dot",
}
_FUNCTION_NAMES = set(sym.FUNCTIONS) | set(sym.LIMIT_FUNCTIONS)
_BIG = {shown: key for key, (_spoken, shown) in sym.BIG_OPERATORS.items()}
_INVISIBLE = {"\u2061", "\u2062", "\u2063", "\u2064"}


def _name(el: Any) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _children(el: Any) -> list[Any]:
    return [c for c in el if _name(c)]


def _text(el: Any) -> str:
    return " ".join("".join(el.itertext()).split())


def math_source(el: Any) -> str:
    """LaTeX for a ``<math>`` element (see the module docstring)."""
    for child in el.iter():
        if (
            _name(child) == "annotation"
            and str(child.get("encoding") or "").lower() in _TEX_ENCODINGS
        ):
            tex = _text(child)
            if tex:
                return tex
    alttext = str(el.get("alttext") or "").strip()
    if alttext and any(c in alttext for c in "\\^_{"):
        return alttext
    tex = mathml_to_latex(el).strip()
    return tex or alttext


def _group(tex: str) -> str:
    return "{" + tex + "}"


def mathml_to_latex(el: Any) -> str:
    """LaTeX for a presentation-MathML element and its content."""
    name = _name(el)
    kids = _children(el)
    if name in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    if name == "semantics":
        return mathml_to_latex(kids[0]) if kids else ""
    if name == "mi":
        text = _text(el)
        if len(text) > 1:
            if text in _FUNCTION_NAMES:
                return (
                    f"\\{text} " if text in sym.FUNCTIONS or text in sym.LIMIT_FUNCTIONS else text
                )
            return f"\\mathrm{{{text}}}"
        if el.get("mathvariant") == "bold":
            return f"\\mathbf{{{text}}}"
        if el.get("mathvariant") == "double-struck":
            return f"\\mathbb{{{text}}}"
        return text
    if name == "mn":
        return _text(el)
    if name == "mo":
        text = _text(el)
        if text in _INVISIBLE or not text:
            return " "
        if text in _BIG:
            return f"\\{_BIG[text]} "
        return {"{": "\\{", "}": "\\}", "|": "|", "‖": "\\|", "−": "-", "⋅": "\\cdot "}.get(
            text, text
        )
    if name == "mtext":
        return f"\\text{{{_text(el)}}}"
    if name == "mspace":
        return "\\,"
    if name == "ms":
        return f"\\text{{{_text(el)}}}"
    parts = [mathml_to_latex(k) for k in kids]
    if name == "mfrac" and len(parts) == 2:
        if el.get("linethickness") in ("0", "0px"):
            return f"\\binom{_group(parts[0])}{_group(parts[1])}"
        return f"\\frac{_group(parts[0])}{_group(parts[1])}"
    if name == "msqrt":
        return f"\\sqrt{_group(''.join(parts))}"
    if name == "mroot" and len(parts) == 2:
        return f"\\sqrt[{parts[1]}]{_group(parts[0])}"
    if name in ("msup", "mover") and len(parts) == 2:
        if (
            name == "mover"
            and el.get("accent") in ("true", None)
            and _text(kids[1]) in _ACCENT_COMMANDS
        ):
            return f"\\{_ACCENT_COMMANDS[_text(kids[1])]}{_group(parts[0])}"
        return f"{_group(parts[0])}^{_group(parts[1])}"
    if name in ("msub", "munder") and len(parts) == 2:
        return f"{_group(parts[0])}_{_group(parts[1])}"
    if name in ("msubsup", "munderover") and len(parts) == 3:
        return f"{_group(parts[0])}_{_group(parts[1])}^{_group(parts[2])}"
    if name == "mfenced":
        opener = str(el.get("open", "("))
        closer = str(el.get("close", ")"))
        separator = (el.get("separators") or ",").strip()[:1] or ","
        return opener + f"{separator} ".join(parts) + closer
    if name == "mtable":
        rows = []
        for row in kids:
            cells = (
                [mathml_to_latex(c) for c in _children(row)]
                if _name(row) in ("mtr", "mlabeledtr")
                else [mathml_to_latex(row)]
            )
            rows.append(" & ".join(cells))
        return "\\begin{matrix}" + " \\\\ ".join(rows) + "\\end{matrix}"
    return " ".join(p for p in parts if p)

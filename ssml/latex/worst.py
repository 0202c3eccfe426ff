"""Worst-case formula shapes: the property tests and ``bench/latex.py`` generate these.

Each shape once made a stage of reading super-linear or let it recurse without bound:
caption text of nested fractions doubled per level, speech of nested scripts and
derivative fractions tripled, unbraced chains (``\\frac1\\frac1...``, ``x^2^2...``,
``\\not\\not...``) and fences nested past Python's recursion limit, unmatched fences
searched the whole stack, macros grew without a size cap, and trailing spacing
backtracked cubically. :data:`WRAPPERS` nest one construct around an inner formula,
:data:`CHAINS` repeat a prefix that nests without braces, and :data:`FLAT` builds long
flat rows, repeated macros and very long tokens of about ``n`` units.
"""

from __future__ import annotations

from collections.abc import Callable

from ssml.latex import MAX_FORMULA_CHARS

#: each construct wraps an inner formula once: (opening, closing) around it
WRAPPERS: dict[str, tuple[str, str]] = {
    "frac-num": ("\\frac{", "}{2}"),
    "frac-den": ("\\frac{1}{", "}"),
    "dfrac-both": ("\\dfrac{a+", "}{b-c}"),
    "binom": ("\\binom{n}{", "}"),
    "sqrt": ("\\sqrt{", "}"),
    "sqrt-index": ("\\sqrt[3]{", "+1}"),
    "sup": ("x^{", "}"),
    "sub": ("a_{", "}"),
    "sub-sup": ("a_{i}^{", "}"),
    "left-right": ("\\left(", "\\right)"),
    "left-bar": ("\\left|", "\\right|"),
    "pmatrix": ("\\begin{pmatrix}", " & 1 \\\\ 0 & 1\\end{pmatrix}"),
    "cases": ("\\begin{cases}", " & x > 0 \\\\ 0 & \\text{otherwise}\\end{cases}"),
    "aligned": ("\\begin{aligned} y &= ", " \\\\ z &= 1\\end{aligned}"),
    "braces": ("{", "}"),
    "parens": ("(", ")"),
    "brackets": ("[", "]"),
    "bars": ("|", "|"),
    "set": ("\\{", "\\}"),
    "f-of": ("f(", ")"),
    "sin-of": ("\\sin(", ")"),
    "text-math": ("\\text{if $", "$ holds}"),
    "bold": ("\\mathbf{", "}"),
    "hat": ("\\hat{", "}"),
    "overset": ("\\overset{a}{", "}"),
    "sum": ("\\sum_{i=1}^{n} ", ""),
    "int": ("\\int_0^1 ", " \\, dx"),
    "lim": ("\\lim_{x \\to 0} ", ""),
    "derivative": ("\\frac{d ", "}{dx}"),
    "ce": ("\\ce{H2O + $", "$}"),
    "macro": ("\\newcommand{\\w}[1]{(#1)}\\w{", "}"),
}
#: constructs that nest without any braces: each repeats a prefix
CHAINS: dict[str, str] = {
    "unbraced-frac": "\\frac1",
    "hat-chain": "\\hat",
    "not-chain": "\\not",
    "script-chain": "^2",
    "prime-chain": "'",
    "sum-chain": "\\sum ",
    "int-chain": "\\int ",
    "nabla-chain": "\\nabla ",
    "minus-chain": "-",
    "open-parens": "(",
    "close-brackets": "]",
    "open-braces": "{",
    "close-braces": "}",
    "left-unclosed": "\\left(",
    "begin-unclosed": "\\begin{matrix}",
    "sqrt-unclosed": "\\sqrt[",
}

#: long flat rows, repeated macros and very long tokens, about ``n`` units long
FLAT: dict[str, Callable[[int], str]] = {
    "sum": lambda n: " + ".join(f"x_{{{k}}}" for k in range(n)),
    "products": lambda n: " \\cdot ".join(f"\\frac{{a_{k}}}{{b_{k}}}" for k in range(n)),
    "relations": lambda n: " \\leq ".join("x" for _ in range(n)),
    "commas": lambda n: ", ".join(f"f(x_{k})" for k in range(n)),
    "matrix": lambda n: (
        "\\begin{bmatrix}"
        + " \\\\ ".join(" & ".join(["1"] * 10) for _ in range(n // 10 + 1))
        + "\\end{bmatrix}"
    ),
    "macros": lambda n: "\\def\\a{x+y}" + "\\a" * n,
    "macro-doubling": lambda n: (
        "\\def\\a{xx}\\def\\b{\\a\\a}\\def\\c{\\b\\b}\\def\\d{\\c\\c}" + "\\d" * n
    ),
    "recursive-macro": lambda n: "\\def\\r{\\r x}" + "\\r" * (n % 5 + 1),
    "argument-macro": lambda n: (
        "\\newcommand{\\t}[1]{#1#1}" + "\\t{" * (n % 60) + "x" + "}" * (n % 60)
    ),
    "long-number": lambda n: "9" * (n * 10),
    "long-letters": lambda n: "x" * (n * 10),
    "long-command": lambda n: "\\" + "a" * (n * 10),
    "long-text": lambda n: "\\text{" + "word " * (n * 2) + "}",
    "long-operatorname": lambda n: "\\operatorname{" + "a" * (n * 10) + "}(x)",
    "spaces": lambda n: "x" + " " * (n * 10) + "y" + " " * (n * 10) + ".",
    "thin-spaces": lambda n: "x" + "\\," * (n * 5) + "y" + "\\;" * (n * 5),
    "quads": lambda n: "x" + "\\quad" * n + "=" + "\\qquad" * n,
    "text-dollars": lambda n: "\\text{" + "$x$ " * n + "}",
    "ce-tower": lambda n: "\\ce{H" + "2^+" * n + "}",
    "unknown-commands": lambda n: "".join(f"\\cmd{chr(97 + k % 26)}{k} " for k in range(n)),
}


def nested(wrappers: list[str], core: str = "x") -> str:
    """``wrappers[0]`` outermost around ... around ``core``."""
    opening = "".join(WRAPPERS[w][0] for w in wrappers)
    closing = "".join(WRAPPERS[w][1] for w in reversed(wrappers))
    return opening + core + closing


def capped(source: str) -> str:
    """At most the characters a formula may have, not ending in half a ``\\x`` pair."""
    source = source[:MAX_FORMULA_CHARS]
    if (len(source) - len(source.rstrip("\\"))) % 2:
        source = source[:-1]
    return source


__all__ = ["CHAINS", "FLAT", "WRAPPERS", "capped", "nested"]

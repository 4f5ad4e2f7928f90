"""Signatures: a message with its variable parts masked, so that equal events group.

The masking rules are one ordered list, specific before general, each with its own
placeholder (``<IP>``, ``<NUM>``...), applied as whole-column ``str.replace_all``.
"""

from __future__ import annotations

import polars as pl

#: (name, Rust regex, placeholder), applied in order.
MASKS: list[tuple[str, str, str]] = [
    ("ip_port", r"\b[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]+)?\b", "<IP>"),
    ("hex", r"\b(?:0x)?[0-9a-f]{8,}\b", "<HEX>"),
    ("num", r"\b[0-9]+(?:\.[0-9]+)?[a-zµ]*\b", "<NUM>"),
]


def mask(message: pl.Expr | str) -> pl.Expr:
    """The signature of each message: ``message`` with every mask applied in order.

    >>> import polars as pl
    >>> pl.select(mask(pl.lit("dial 10.0.0.1:53 after 30s"))).item()
    'dial <IP> after <NUM>'
    """
    expr = pl.col(message) if isinstance(message, str) else message
    for _name, pattern, placeholder in MASKS:
        expr = expr.str.replace_all(pattern, placeholder)
    return expr

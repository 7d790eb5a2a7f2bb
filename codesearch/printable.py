"""Text from a repository made safe to print on a terminal.

A file name, a symbol name or a line of code can hold control characters: a newline that
forges an output line, an escape sequence that clears the screen or retitles the terminal,
a bidirectional override that shows code other than it is. Human output shows them escaped
(``\\n``, ``\\x1b``, ``\\u202e``), never executes them; JSON output keeps exact strings.
Cheap to import.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, the line and paragraph separators, and the bidirectional
# embedding, override and isolate characters ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def name(text: str) -> str:
    """A name (path, symbol, message) for a terminal: every control character escaped."""
    return _UNSAFE.sub(_escape, text)


def line(text: str) -> str:
    """One line of code for a terminal: control characters escaped, tabs kept."""
    return _UNSAFE_IN_LINE.sub(_escape, text)

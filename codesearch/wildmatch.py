"""gitignore globs, read as git reads them and translated by :mod:`pathspec`: the one glob
dialect of the ignore files (:mod:`codesearch.ignore`) and of every path filter
(:mod:`codesearch.globs`).

pathspec reads a glob as git does (comments, `!`, escapes, anchoring, `*`, `?`, `**`) except in
bracket expressions, which it hands to `re` almost as written: POSIX classes ([[:digit:]]) and
escapes inside ([\\]]) mean something else, and a negated bracket matches `/`. So each bracket
is translated here, git's way, and stands in the glob as a private-use character that is
swapped for its regex in pathspec's result. A few other corners where pathspec and git part
(checked against ``git check-ignore`` by tests/test_wildmatch.py) are rewritten first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import _DIR_MARK, GitIgnoreSpecPattern

_MARK = 0xF0000  # Supplementary Private Use Area-A: the k-th bracket is chr(_MARK + k)

# git's POSIX classes: ASCII, as regex class contents
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r" \t\n\r\f\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


@dataclass(frozen=True)
class Glob:
    """One compiled glob: pathspec's regex for it (a folder it matches also matches what lies
    below; pathspec marks such a match) and whether it is a ``!`` pattern."""

    regex: re.Pattern[str]
    negated: bool
    anchored: bool  # a `/` before its end: matched against a path, else against a name

    def matches_itself(self, path: str) -> bool:
        """Whether the glob matches ``path`` itself, not only a folder above it."""
        found = self.regex.search(path)
        return found is not None and found.groupdict().get(_DIR_MARK) is None


def trim(line: str) -> str:
    """git's ``trim_trailing_spaces``: drop the trailing spaces no backslash quotes (a tab
    stays: it is part of the pattern)."""
    last_space: int | None = None
    i = 0
    while i < len(line):
        if line[i] == " ":
            last_space = i if last_space is None else last_space
        else:
            i += line[i] == "\\"
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def compile_glob(glob: str) -> Glob | None:
    """``glob`` (one gitignore pattern, trailing spaces already trimmed, a trailing `/` kept or
    not) compiled; None for a blank, a comment, or a pattern git matches nothing with."""
    negated = glob.startswith("!")
    core = glob[negated:]
    anchored = "/" in core.removesuffix("/")
    translated = _for_pathspec(glob)
    if translated is None or core.startswith("\\/"):  # no path starts with `/`
        return None
    text, regexes = translated
    if anchored and "/" not in text[negated:].removesuffix("/"):  # its `/` was in a bracket
        text = f"{text[:negated]}/{text[negated:]}"
    try:
        regex, include = GitIgnoreSpecPattern.pattern_to_regex(text)
        if regex is None or include is None:  # a blank, a comment, a pattern git discards
            return None
        for k, part in enumerate(regexes):
            regex = regex.replace(chr(_MARK + k), part)
        return Glob(re.compile(regex, re.DOTALL), not include, anchored)
    except (GitIgnorePatternError, re.error):
        return None


def _for_pathspec(glob: str) -> tuple[str, list[str]] | None:
    """``glob`` as pathspec should read it, and the regexes its marks stand for: brackets
    (:func:`_bracket`) and trailing whitespace (pathspec strips it; git keeps what is left
    after its own trimming) become marks; an escaped `/` is a `/` (an error for pathspec);
    a run of stars is `**` (`***/` is `**/` for git) and `**\\/` one folder or more; `a/**/`
    the folders below `a` (pathspec: `a/` and all in it). None when git matches nothing with
    it."""
    if any(ord(char) >= _MARK for char in glob):
        return None
    out: list[str] = []
    regexes: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        if glob[i] == "\\" and i + 1 < n:
            out.append("/" if glob[i + 1] == "/" else glob[i : i + 2])
            i += 2
        elif glob[i] == "[":
            found = _bracket(glob, i)
            if found is None:
                return None
            out.append(chr(_MARK + len(regexes)))
            regexes.append(found[0])
            i = found[1]
        elif glob.startswith("**", i):
            i = len(glob) - len(glob[i:].lstrip("*"))
            folders = (not out or out[-1] == "/") and glob.startswith("\\/", i)
            out.append("**/*" if folders else "**")
        else:
            out.append(glob[i])
            i += 1
    if out and out[-1][-1].isspace():
        regexes.append(re.escape(out[-1][-1]))
        out[-1] = chr(_MARK + len(regexes) - 1)
    text = "".join(out)
    if text.endswith("/**/") and text.lstrip("!") != "/**/":  # pathspec: a/**/ is a/
        text = text[:-1] + "/*/"  # git: the folders below a
    return text, regexes


def _bracket(glob: str, start: int) -> tuple[str, int] | None:
    """The bracket expression opened at ``start``, read as git's wildmatch reads it, as a regex
    that never matches `/`, and the index after it; None when git matches nothing with the
    pattern (an unclosed bracket, an unknown class)."""
    i, n = start + 1, len(glob)
    negate = i < n and glob[i] in "!^"
    i += negate
    items: list[str] = []
    prev: str | None = None  # a single character before, which a `-` makes a range's start
    opened = i
    while i < n and (glob[i] != "]" or i == opened):
        char = glob[i]
        close = glob.find("]", i + 2) if glob.startswith("[:", i) else -1
        if char == "\\":
            if i + 1 >= n:
                return None
            char, i = glob[i + 1], i + 2
        elif char == "-" and prev is not None and i + 1 < n and glob[i + 1] != "]":
            end, i = glob[i + 1], i + 2
            if end == "\\":
                if i >= n:
                    return None
                end, i = glob[i], i + 1
            if prev <= end:  # reversed ([z-a]): git matches its first character only
                items[-1] = f"{re.escape(prev)}-{re.escape(end)}"
            prev = None
            continue
        elif close > i + 2 and glob[close - 1] == ":":  # [:name:]
            ranges = _POSIX_CLASSES.get(glob[i + 2 : close - 1])
            if ranges is None:
                return None
            items.append(ranges)
            prev, i = None, close + 1
            continue
        else:
            i += 1
        items.append(re.escape(char))
        prev = char
    if i >= n:
        return None
    body = "".join(items)
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]", i + 1)

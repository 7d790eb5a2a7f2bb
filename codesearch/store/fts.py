"""Identifier-aware text for the FTS5 index, and a safe query builder.

SQLite's ``unicode61`` tokenizer already splits on ``_`` and punctuation, but not on
camelCase: ``RetryBackoff`` is one token. :func:`index_text` appends the lowercase parts of
such identifiers to the indexed text, and :func:`match_query` splits a query the same way,
so "retry backoff" matches ``compute_retry_backoff``, ``RetryBackoff`` and ``retryBackoff.py``.
"""

from __future__ import annotations

import re

# The version of what index_text and path_text make of a text. The contentless FTS table is
# told the same text again to delete a row, so a change here must change this (an index of
# another version is re-chunked: Store.configure).
TEXT_VERSION = "1"

# BM25 column weights for chunks_fts(name, path, body): a hit in the symbol name counts most.
NAME_WEIGHT = 4.0
PATH_WEIGHT = 2.0
BODY_WEIGHT = 1.0
BM25_EXPR = f"bm25(chunks_fts, {NAME_WEIGHT}, {PATH_WEIGHT}, {BODY_WEIGHT})"

# The most tokens a query turns into (a pasted page of text must not build a huge MATCH).
MAX_QUERY_TOKENS = 64

_STOPWORD_TEXT = """
    a an the and or is are was were be been being am it its this that these those where
    what which who whom whose when why how does do did done doing has have had to of in on
    at by for from with without into onto about as than then there here i me my we our you
    your he she they them their can could should would will shall may might must some any
    all each every
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# A run of letters/digits: the unit that unicode61 turns into one token.
_WORD = re.compile(r"[^\W_]+")
# Parts of a camelCase / PascalCase word; digits stay with the letters before them.
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+|[^\W\d_]+")
_ALPHA_DIGIT = re.compile(r"[^\W\d_]+|[0-9]+")


def split_identifier(word: str, *, digits: bool = True) -> list[str]:
    """Lowercase sub-words of one letter/digit run: ``getUTF8Bytes`` -> get, utf8, utf, 8, bytes.

    With ``digits=False`` letters and digits are not split apart (get, utf8, bytes): queries
    use that, so ``id42`` does not turn into the very common ``id``. Returns ``[]`` when the
    word has no inner boundary (unicode61 indexes it as it is).
    """
    parts: list[str] = []
    for part in _PART.findall(word):
        parts.append(part.lower())
        pieces = _ALPHA_DIGIT.findall(part)
        if digits and len(pieces) > 1:
            parts.extend(p.lower() for p in pieces)
    parts = [p for p in parts if p != word.lower()]
    if len(parts) <= 1:
        return []
    return parts


def index_text(text: str) -> str:
    """``text`` plus the lowercase parts of every camelCase/digit-boundary identifier in it."""
    extra: list[str] = []
    seen: set[str] = set()
    for word in _WORD.findall(text):
        if word in seen:
            continue
        seen.add(word)
        extra.extend(split_identifier(word))
    if not extra:
        return text
    return f"{text}\n{' '.join(extra)}"


def query_tokens(query: str) -> list[str]:
    """Lowercase, deduplicated search tokens of ``query``, stopwords dropped unless all are."""
    tokens: list[str] = []
    for word in _WORD.findall(query):
        tokens.append(word.lower())
        tokens.extend(split_identifier(word, digits=False))
    unique = list(dict.fromkeys(tokens))
    content = [t for t in unique if t not in STOPWORDS]
    return (content or unique)[:MAX_QUERY_TOKENS]


def match_query(query: str) -> str | None:
    """A safe FTS5 MATCH expression for a natural-language query, or ``None`` if it has no words.

    Every token is an FTS5 string (double-quoted, ``"`` doubled), so operators such as
    ``AND``, ``NEAR``, ``*``, ``-`` or parentheses in the input are plain words or dropped.
    """
    tokens = query_tokens(query)
    if not tokens:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens)


# A phrase needs this many words to say more than its words do alone.
MIN_PHRASE_WORDS = 4


def phrase_query(query: str) -> str | None:
    """An FTS5 phrase for the query's words in order (stopwords kept), or ``None`` if the
    query is too short to be a phrase. It matches text that contains the query verbatim,
    up to punctuation and markup (a pasted comment, docstring or error message)."""
    words = [w.lower() for w in _WORD.findall(query)][:MAX_QUERY_TOKENS]
    if len(words) < MIN_PHRASE_WORDS:
        return None
    return '"' + " ".join(w.replace('"', '""') for w in words) + '"'


def path_text(path: str) -> str:
    """The path as indexed text (unicode61 splits ``/``, ``.`` and ``-``; camelCase added)."""
    return index_text(path)

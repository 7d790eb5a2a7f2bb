"""Identifier-aware FTS text and the safe MATCH builder (checked against real FTS5)."""

from __future__ import annotations

import pytest
import sqlean

from codesearch.store.fts import (
    MAX_QUERY_TOKENS,
    index_text,
    match_query,
    path_text,
    query_tokens,
    split_identifier,
)


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("RetryBackoff", ["retry", "backoff"]),
        ("parseHTTPResponse", ["parse", "http", "response"]),
        ("getUTF8Bytes", ["get", "utf8", "utf", "8", "bytes"]),
        ("XMLHttpRequest", ["xml", "http", "request"]),
        ("retry", []),
        ("HTTP", []),
        ("x2", ["x", "2"]),
        ("sha256", ["sha", "256"]),
    ],
)
def test_split_identifier(word: str, parts: list[str]) -> None:
    assert split_identifier(word) == parts


def test_index_text_appends_parts_once() -> None:
    text = "class RetryBackoff(Base):\n    x = RetryBackoff()\n    compute_retry_backoff()"
    out = index_text(text)
    assert out.startswith(text)
    assert out[len(text) :].split() == ["retry", "backoff"]
    assert index_text("plain words only") == "plain words only"
    assert "retry backoff" in path_text("src/net/retryBackoff.py")


def test_query_tokens() -> None:
    assert query_tokens("getUTF8Bytes id42") == ["getutf8bytes", "get", "utf8", "bytes", "id42"]
    assert query_tokens("Where is the RetryBackoff computed?") == [
        "retrybackoff",
        "retry",
        "backoff",
        "computed",
    ]
    assert query_tokens("how does it work") == ["work"]
    assert query_tokens("where is it") == ["where", "is", "it"]  # all stopwords: keep them
    assert query_tokens("") == [] and query_tokens("?! -- **") == []
    assert len(query_tokens(" ".join(f"w{i}" for i in range(500)))) == MAX_QUERY_TOKENS


def test_match_query_quotes_every_token() -> None:
    assert match_query("retry backoff") == '"retry" OR "backoff"'
    assert match_query('NEAR(a "b") AND c*') == '"near" OR "b" OR "c"'
    assert match_query("") is None
    assert match_query("()*:^-") is None


@pytest.mark.parametrize(
    "query",
    [
        '"',
        'say "hi"',
        "*",
        "a*",
        "-x",
        "NEAR(a b, 2)",
        "AND",
        "x AND",
        "OR OR",
        "NOT y",
        "(",
        "a)",
        "name:x",
        "^x",
        "{a b}: c",
        "é",
        "日本語のテキスト",
        "\x00\x01",
        "a" * 10000,
    ],
)
def test_match_query_is_valid_fts5(query: str) -> None:
    conn = sqlean.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'porter unicode61')")
    conn.execute("INSERT INTO t(a) VALUES ('say hi near a 日本語のテキスト é')")
    expr = match_query(query)
    if expr is not None:
        conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()

"""A consistency check of an index: SQLite's own page check plus the links between tables.

The tables hold one thing several ways: ``chunk_rows.vector_id`` names a row of ``vectors`` and
a row of the vec0 table (same id), that vector's key is the digest of the chunk's text hash
(behind its task, if any; late-chunked and pixel vectors have keys of their own),
``chunk_rows.file`` names a row of ``files``, and ``chunk_rows.id`` is the
rowid of the chunk's row in the contentless FTS table ``chunks_fts`` (its rowids can be read
back; its text cannot). :func:`find_problems` reads all of them once and lists, in plain
words, what does not match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlean

from codesearch.store.base import damage_of
from codesearch.store.sql import body_dictionary, key_digest, unpack_body
from codesearch.types import IMAGE_TASK, content_hash, vector_key

MAX_PAGE_PROBLEMS = 10  # lines of PRAGMA quick_check output reported
MAX_EXAMPLES = 5  # ids shown per problem


def _examples(ids: Iterable[Any]) -> str:
    items = sorted(ids)
    shown = ", ".join(str(i) for i in items[:MAX_EXAMPLES])
    return shown + (", ..." if len(items) > MAX_EXAMPLES else "")


def _ids(conn: Any, sql: str) -> set[Any]:
    return {row[0] for row in conn.execute(sql)}


def _page_problems(conn: Any) -> list[str]:
    lines: list[str] = []
    for (text,) in conn.execute("PRAGMA quick_check"):
        lines.extend(line for line in str(text).splitlines() if line.strip())
    lines = [line for line in lines if line != "ok" and not line.startswith("*** in database")]
    if lines:
        names = dict(conn.execute("SELECT rootpage, name FROM sqlite_master WHERE rootpage > 0"))
        lines = [
            re.sub(
                r"^Tree (\d+)", lambda m: f"{m.group(0)} ({names.get(int(m.group(1)), '?')})", line
            )
            for line in lines
        ]
    problems = [f"database pages: {line}" for line in lines[:MAX_PAGE_PROBLEMS]]
    if len(lines) > MAX_PAGE_PROBLEMS:
        problems.append(f"database pages: ... and {len(lines) - MAX_PAGE_PROBLEMS} more problems")
    return problems


def _vec_dim(conn: Any, vec_table: str) -> int | None:
    """The dimension the vec0 table was created with, or None if there is no such table."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (vec_table,)
    ).fetchone()
    if row is None:
        return None
    found = re.search(r"(?:float|int8)\[(\d+)\]", str(row[0]))
    return int(found.group(1)) if found else 0


def _misplaced(conn: Any, meta: dict[str, str]) -> set[int]:
    """Chunks whose vector's key is not that of the chunk's own text (pixel vectors, and every
    vector of a late-chunked index, are keyed by more than the text: not checked)."""
    found: set[int] = set()
    if meta.get("late_chunking") == "1":
        return found
    rows = conn.execute(
        "SELECT c.id, c.body, v.key, v.task, c.language, c.kind, c.name, c.path FROM chunks c "
        "JOIN vectors v ON v.id = c.vector_id"
    )
    for cid, body, key, task, *row in rows:
        if task == IMAGE_TASK:
            continue
        header, text = unpack_body(body, body_dictionary(*row))
        embedded = f"{header}\n{text}" if header else text
        if key_digest(vector_key(content_hash(embedded), task)) != bytes(key):
            found.add(int(cid))
    return found


def _link_problems(conn: Any, vec_table: str) -> list[str]:
    problems: list[str] = []
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    chunk_rows = conn.execute("SELECT id, vector_id, file FROM chunk_rows").fetchall()
    chunk_ids = {cid for cid, _, _ in chunk_rows}

    missing_meta = [key for key in ("model_id", "dim") if key not in meta]
    if missing_meta and chunk_rows:
        problems.append(
            f"meta has no {' or '.join(missing_meta)} but {len(chunk_rows)} chunks exist"
        )
    vec_dim = _vec_dim(conn, vec_table)
    if "dim" in meta and vec_dim is None:
        problems.append(f"the vector table {vec_table} is missing (meta dim is {meta['dim']})")
    elif "dim" in meta and str(vec_dim) != str(meta["dim"]):
        problems.append(f"the vector table holds {vec_dim}-dim vectors, meta says {meta['dim']}")

    vector_ids = _ids(conn, "SELECT id FROM vectors")
    lost = {cid for cid, vid, _ in chunk_rows if vid not in vector_ids}
    if lost:
        problems.append(f"{len(lost)} chunks point to no vectors row (chunk ids {_examples(lost)})")
    if vec_dim is not None:
        vec_ids = _ids(conn, f"SELECT rowid FROM {vec_table}")
        lost = {cid for cid, vid, _ in chunk_rows if vid not in vec_ids}
        if lost:
            problems.append(
                f"{len(lost)} chunks point to no row of {vec_table} (chunk ids {_examples(lost)})"
            )
        extra = vec_ids - vector_ids
        if extra:
            problems.append(
                f"{len(extra)} rows of {vec_table} have no vectors row (ids {_examples(extra)})"
            )
        extra = vector_ids - vec_ids
        if extra:
            problems.append(
                f"{len(extra)} vectors rows have no row in {vec_table} (ids {_examples(extra)})"
            )

    lost = _misplaced(conn, meta)
    if lost:
        problems.append(
            f"{len(lost)} chunks point to the vector of another key (chunk ids {_examples(lost)})"
        )

    fts_ids = _ids(conn, "SELECT rowid FROM chunks_fts")
    extra = chunk_ids - fts_ids
    if extra:
        problems.append(
            f"{len(extra)} chunks are missing from the full-text index (ids {_examples(extra)})"
        )
    extra = fts_ids - chunk_ids
    if extra:
        problems.append(
            f"{len(extra)} full-text index rows have no chunk (rowids {_examples(extra)})"
        )

    file_ids = _ids(conn, "SELECT id FROM files")
    orphans = {file for _, _, file in chunk_rows if file not in file_ids}
    if orphans:
        count = sum(1 for _, _, file in chunk_rows if file not in file_ids)
        problems.append(
            f"{count} chunks belong to {len(orphans)} files with no files row "
            f"(file ids {_examples(orphans)})"
        )
    return problems


def find_problems(conn: Any, vec_table: str) -> list[str]:
    """Human-readable problems of the index open on ``conn`` (empty: healthy).

    A part of the check that fails to read the file (a damaged page) is reported as a
    problem, and the other part still runs. Any other failure (a full disk, a lock) is no
    finding about the file: it is raised.
    """
    problems: list[str] = []
    parts = (
        ("check the pages", _page_problems),
        ("compare the tables", lambda c: _link_problems(c, vec_table)),
    )
    for what, part in parts:
        try:
            problems.extend(part(conn))
        except sqlean.Error as exc:
            damage = damage_of(exc)
            if not damage:
                raise
            problems.append(f"cannot {what}: {damage}")
    return problems


def page_problems(conn: Any) -> list[str]:
    """Only SQLite's page check (``PRAGMA quick_check``): what :func:`find_problems` reports
    about the pages, without comparing the tables (cheaper: a periodic check)."""
    try:
        return _page_problems(conn)
    except sqlean.Error as exc:
        damage = damage_of(exc)
        if not damage:
            raise
        return [f"cannot check the pages: {damage}"]

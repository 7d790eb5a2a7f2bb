"""Small SQL helpers shared by the store's modules: batching ``IN (...)`` lists, vector blobs,
and the Python side of search filters."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from codesearch.globs import filters_paths, path_passes
from codesearch.roles import is_test_path
from codesearch.store import fts
from codesearch.types import Chunk, Filters, Kind, Media

_BATCH = 500  # ids per `IN (...)` list


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _filtered(filters: Filters) -> bool:
    return bool(
        filters.languages or filters.kinds or filters_paths(filters) or not filters.include_tests
    )


def _passes(filters: Filters, path: str, language: str, kind: str) -> bool:
    return (
        (not filters.languages or language in filters.languages)
        and (not filters.kinds or kind in filters.kinds)
        and path_passes(path, filters.path_globs, filters.exclude_globs)
        and (filters.include_tests or not is_test_path(path))
    )


# A chunk row: these columns, in this order, become a Chunk (see _chunk_row).
CHUNK_COLUMNS = (
    "id, path, language, kind, name, start_line, end_line, body, media, def_start, def_end"
)

# A chunk's header and text are kept as one zlib stream: 4 bytes of header length (UTF-8 bytes,
# little-endian), the header, the text. Code compresses to about half (406 -> 219 bytes per
# chunk on the `requests` corpus); reading a result's chunks decompresses a few dozen. Since
# schema 6 the stream starts from a preset dictionary made of the chunk's own row (language,
# kind, name, path: :func:`body_dictionary`), words its header repeats: 238 -> 211 bytes per
# chunk on django. Schema 5 bodies had none (the migration re-packs them).
_BODY_LEVEL = 6


def body_dictionary(language: str, kind: str, name: str, path: str) -> bytes:
    """The preset dictionary of a chunk's body: words of its row that the header repeats."""
    return f"{language} {kind} {name} {path}".encode("utf-8", "surrogatepass")


def pack_body(header: str, text: str, dictionary: bytes = b"") -> bytes:
    head = header.encode("utf-8", "surrogatepass")
    raw = struct.pack("<I", len(head)) + head + text.encode("utf-8", "surrogatepass")
    if not dictionary:
        return zlib.compress(raw, _BODY_LEVEL)
    packer = zlib.compressobj(_BODY_LEVEL, zdict=dictionary)
    return packer.compress(raw) + packer.flush()


def unpack_body(body: bytes, dictionary: bytes = b"") -> tuple[str, str]:
    """(header, text) of a packed body (``dictionary``: the one it was packed with)."""
    if dictionary:
        unpacker = zlib.decompressobj(zdict=dictionary)
        raw = unpacker.decompress(body) + unpacker.flush()
    else:
        raw = zlib.decompress(body)
    (size,) = struct.unpack_from("<I", raw)
    head = raw[4 : 4 + size].decode("utf-8", "surrogatepass")
    return head, raw[4 + size :].decode("utf-8", "surrogatepass")


def key_digest(key: str) -> bytes:
    """How a vector's key (``chunk.vector_key(task)``: a task and a content hash) is stored:
    its 16-byte BLAKE2b digest, a quarter of the 64 hex digits (plus task) it replaces."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# The columns fts_row needs, in its order.
FTS_SOURCE = "id, name, path, body, language, kind"


def fts_row(
    cid: int, name: str, path: str, body: bytes, language: str, kind: str
) -> tuple[int, str, str, str]:
    """The ``chunks_fts`` row of a stored chunk (a row of :data:`FTS_SOURCE`): (rowid, name,
    path, body) as indexed. A delete from the contentless table must pass exactly these values
    back."""
    _, text = unpack_body(body, body_dictionary(language, kind, name, path))
    return (cid, *fts_columns(name, path, text))


def fts_columns(name: str, path: str, text: str) -> tuple[str, str, str]:
    """What ``chunks_fts`` indexes of a chunk (name, path, body): written on insert and
    handed back, the same, on delete (:func:`fts_row`)."""
    return fts.index_text(name), fts.path_text(path), fts.index_text(text)


def _media_text(media: Media | None) -> str:
    if media is None:
        return ""
    return json.dumps(
        {"hash": media.hash, "page": media.page, "width": media.width, "height": media.height},
        separators=(",", ":"),
    )


def _media(text: str) -> Media | None:
    if not text:
        return None
    data = json.loads(text)
    return Media(str(data["hash"]), int(data["page"]), int(data["width"]), int(data["height"]))


def _chunk_row(row: Sequence[Any]) -> Chunk:
    """A Chunk from a row of CHUNK_COLUMNS (without the leading id)."""
    path, language, kind, name, start_line, end_line = row[:6]
    header, text = unpack_body(row[6], body_dictionary(language, kind, name, path))
    return Chunk(
        path,
        language,
        Kind(kind),
        name,
        start_line,
        end_line,
        text,
        header,
        media=_media(row[7]),
        def_start=row[8],
        def_end=row[9],
    )

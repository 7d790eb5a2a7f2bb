"""Code files: definitions found by a tree-sitter query, the rest as module code or windows."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codesearch.chunk import pieces as P
from codesearch.chunk.jsnames import js_name
from codesearch.chunk.languages import LEADING, SINGLE_WRAPPERS, WRAPPERS, grammar, new_parser
from codesearch.types import Chunk, Kind

Node = Any  # tree_sitter.Node

# A leftover that is only closing punctuation (`}`, `};`, `})`) joins the chunk before it.
_TRIVIAL = re.compile(r"[\s{}()\[\];,]*(//.*|/\*.*\*/)?")
_SPACES = re.compile(r"\s+")
_MAX_METHODS_IN_HEADER = 10

_local = threading.local()


def _parser(language: str) -> Any:
    parsers: dict[str, Any] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if language not in parsers:
        parsers[language] = new_parser(language)
    return parsers[language]


@dataclass
class _Def:
    core: Node  # the captured definition node
    outer: Node  # with its wrappers (decorators, export, template)
    tag: str  # function | method | class | container
    name: str
    receiver: str
    pattern: int
    kind: Kind = Kind.WINDOW  # set by _nest
    qual: str = ""
    start: int = 0  # first row, leading comments included
    end: int = 0
    in_function: bool = False
    parent: _Def | None = None


@dataclass
class _Piece:
    start: int
    end: int
    kind: Kind
    name: str
    header: str
    units: list[tuple[int, int]] = field(default_factory=list)
    splittable: bool = True
    leftover: bool = False


def end_row(node: Node) -> int:
    """The last row holding text of node (a node ending at column 0 ends on the row before)."""
    row, col = node.end_point
    if col == 0 and row > node.start_point.row:
        return row - 1
    return row


def _text(src: bytes, node: Node) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _outer(node: Node) -> Node:
    while True:
        parent = node.parent
        if parent is None:
            return node
        single = parent.type in SINGLE_WRAPPERS and parent.named_child_count == 1
        if not (parent.type in WRAPPERS or single):
            return node
        node = parent


def _leading_start(node: Node) -> int:
    """The first row of the comments / attributes / decorators directly above node."""
    start = node.start_point.row
    sib = node.prev_sibling
    while sib is not None and sib.type in LEADING:
        if end_row(sib) < start - 1:
            break
        prev = sib.prev_sibling
        if prev is not None and prev.type not in LEADING and end_row(prev) >= sib.start_point.row:
            break  # a trailing comment of the code before
        start = sib.start_point.row
        sib = prev
    return start


def _find_body(node: Node, depth: int = 3) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None or depth == 0:
        return body
    for child in node.named_children:
        found = _find_body(child, depth - 1)
        if found is not None:
            return found
    return None


def _declarator_name(src: bytes, node: Node) -> str:
    """The function name inside a C/C++ declarator chain (pointers, references, parens)."""
    current: Node | None = node
    for _ in range(8):
        if current is None:
            break
        if current.type == "function_declarator":
            inner = current.child_by_field_name("declarator")
            if inner is not None:
                return _SPACES.sub("", _text(src, inner))
        nxt = current.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in current.named_children if "declarator" in c.type), None)
        current = nxt
    return _SPACES.sub(" ", _text(src, node).split("(")[0]).strip()[:60]


def _signature(src: bytes, d: _Def) -> str:
    node = d.core if d.outer.type == "decorated_definition" else d.outer
    body = _find_body(d.core)
    stop = body.start_byte if body is not None and body.start_byte > node.start_byte else None
    if stop is None:
        raw = src[node.start_byte : node.end_byte].split(b"\n", 1)[0]
    else:
        raw = src[node.start_byte : stop]
    sig = _SPACES.sub(" ", raw.decode("utf-8", "replace")).strip().rstrip("{").rstrip()
    if len(sig) > P.SIG_MAX_CHARS:
        sig = sig[: P.SIG_MAX_CHARS - 3].rstrip() + "..."
    return sig


def _statements(body: Node | None) -> list[tuple[int, int]]:
    if body is None:
        return []
    children = body.named_children
    if len(children) == 1 and children[0].type == "statement_list":  # go
        children = children[0].named_children
    return [(c.start_point.row, end_row(c)) for c in children]


def _collect(src: bytes, root: Node, query: Any, path: str = "") -> list[_Def]:
    from tree_sitter import QueryCursor

    by_outer: dict[tuple[int, int], _Def] = {}
    for pattern, caps in QueryCursor(query).matches(root):
        tags = [k for k in caps if k.startswith("definition.")]
        if not tags:
            continue
        core = caps[tags[0]][0]
        tag = tags[0].split(".", 1)[1]
        receiver = _text(src, caps["receiver"][0]) if "receiver" in caps else ""
        if "name" in caps:
            name = _SPACES.sub(" ", _text(src, caps["name"][0])).strip()
        elif "declarator" in caps:
            name = _declarator_name(src, caps["declarator"][0])
        else:
            named = js_name(src, caps, path)
            if named is None:
                continue
            receiver, name = named
            if receiver:  # `res.json`, `api.get`: a method of what it is assigned to
                tag = "method"
        outer = _outer(core)
        key = (outer.start_byte, outer.end_byte)
        old = by_outer.get(key)
        if old is None or pattern < old.pattern:
            by_outer[key] = _Def(core, outer, tag, name, receiver, pattern)
    return sorted(by_outer.values(), key=lambda d: (d.outer.start_byte, -d.outer.end_byte))


def _nest(defs: list[_Def]) -> None:
    stack: list[_Def] = []
    for d in defs:
        while stack and stack[-1].outer.end_byte < d.outer.end_byte:
            stack.pop()
        while stack and stack[-1].outer.end_byte <= d.outer.start_byte:
            stack.pop()
        parent = stack[-1] if stack else None
        d.parent = parent
        d.in_function = parent is not None and (
            parent.in_function or parent.kind in (Kind.FUNCTION, Kind.METHOD)
        )
        in_class = parent is not None and parent.kind == Kind.CLASS
        if d.tag in ("class", "container"):
            d.kind = Kind.CLASS
            d.qual = f"{parent.qual}.{d.name}" if in_class and parent else d.name
        elif d.tag == "method":  # go: receiver methods
            d.kind = Kind.METHOD
            d.qual = f"{d.receiver}.{d.name}" if d.receiver else d.name
        elif in_class and parent:
            d.kind = Kind.METHOD
            d.qual = f"{parent.qual}.{d.name.replace('::', '.')}"
        elif "::" in d.name:  # c++ out-of-line member definition
            d.kind = Kind.METHOD
            d.qual = d.name.replace("::", ".")
        else:
            d.kind = Kind.FUNCTION
            d.qual = d.name
        d.start = _leading_start(d.outer)
        d.end = end_row(d.outer)
        stack.append(d)


def chunk_code(
    path: str,
    language: str,
    src: bytes,
    lines: Sequence[str],
    max_tokens: int,
    count: P.TokenCounter,
) -> list[Chunk]:
    parsed_as = language
    root = _parser(language).parse(src).root_node
    if root.has_error and language == "c" and path.endswith(".h"):  # often a C++ header
        alt = _parser("cpp").parse(src).root_node
        if not alt.has_error:
            parsed_as, root = "cpp", alt
    gram = grammar(parsed_as)
    broken = root.has_error
    defs = _collect(src, root, gram.query, path)
    _nest(defs)
    kept = [d for d in defs if not d.in_function and d.end < len(lines)]
    if broken:  # a definition around a syntax error keeps its name, not what it swallowed
        for d in kept:
            if d.outer.has_error:
                d.end = _plausible_end(d, lines)
    funcs = [d for d in kept if d.kind in (Kind.FUNCTION, Kind.METHOD)]
    classes = [d for d in kept if d.kind == Kind.CLASS]

    methods: dict[str, list[str]] = {}
    for d in funcs:
        if d.kind == Kind.METHOD:
            owner, _, short = d.qual.rpartition(".")
            methods.setdefault(owner, []).append(short)

    n = len(lines)
    covered = bytearray(n)
    found: list[_Piece] = []
    for d in funcs:
        if any(covered[d.start : d.end + 1]):  # overlapping matches (broken code): keep the first
            continue
        covered[d.start : d.end + 1] = b"\x01" * (d.end - d.start + 1)
        header = f"{language} {d.kind} {d.qual}\n{_signature(src, d)}"
        found.append(_Piece(d.start, d.end, d.kind, d.qual, header, _units(d)))

    owner = [-1] * n
    for i, d in enumerate(classes):  # outer classes come first: inner ones overwrite
        owner[d.start : d.end + 1] = [i] * (d.end - d.start + 1)
    class_headers = [_class_header(language, src, d, methods.get(d.qual, [])) for d in classes]

    leftovers: list[_Piece] = []
    for seg_start, seg_end, who in _segments(lines, covered, owner):
        if who >= 0:
            d = classes[who]
            units = _units(d)
            leftovers.append(
                _Piece(seg_start, seg_end, Kind.CLASS, d.qual, class_headers[who], units)
            )
        elif broken:
            for s, e in P.windows(seg_start, seg_end, lines):
                leftovers.append(
                    _Piece(s, e, Kind.WINDOW, "", f"{language} window", splittable=False)
                )
        else:
            breaks = [c.start_point.row for c in root.named_children]
            for s, e in P.blocks(seg_start, seg_end, lines, P.MODULE_MAX_LINES, breaks):
                leftovers.append(
                    _Piece(s, e, Kind.MODULE, "", f"{language} module", splittable=False)
                )

    for piece in leftovers:
        piece.leftover = True
    merged = _merge_trivial(found, leftovers, lines)
    out: list[Chunk] = []
    for piece in merged:
        out.extend(_emit(path, language, piece, lines, max_tokens, count))
    return out


# Lines that continue a definition at its own indentation (a closing bracket, `end`, a
# comment): any other line there starts something the definition does not hold.
_CONTINUES = re.compile(r"\s*(?:[)}\]]|end\b|#|//|/\*|\*|--)")


def _plausible_end(d: _Def, lines: Sequence[str]) -> int:
    """The last row of a definition with a syntax error inside it. Around an error the parser
    often stretches a definition over what follows (the next function, the rest of a class):
    the definition is cut before the first line after its header that is indented no deeper
    than the header and does not continue it; trailing blank lines are dropped."""
    row = d.core.start_point.row
    header = lines[row]
    indent = len(header) - len(header.lstrip())
    end = d.end
    for r in range(row + 1, d.end + 1):
        text = lines[r]
        if not text.strip() or len(text) - len(text.lstrip()) > indent:
            continue
        if not _CONTINUES.match(text):
            end = r - 1
            break
    while end > row and not lines[end].strip():
        end -= 1
    return end


def _units(d: _Def) -> list[tuple[int, int]]:
    """The statements of a definition's body that lie within its (possibly cut) rows."""
    return [(a, min(b, d.end)) for a, b in _statements(_find_body(d.core)) if a <= d.end]


def _class_header(language: str, src: bytes, d: _Def, names: list[str]) -> str:
    header = f"{language} class {d.qual}\n{_signature(src, d)}"
    if names:
        shown = list(dict.fromkeys(names))
        extra = ", ..." if len(shown) > _MAX_METHODS_IN_HEADER else ""
        header += f"\nmethods: {', '.join(shown[:_MAX_METHODS_IN_HEADER])}{extra}"
    return header


def _segments(
    lines: Sequence[str], covered: bytearray, owner: list[int]
) -> list[tuple[int, int, int]]:
    """Uncovered non-blank rows grouped into runs with one owner: (start, end, owner)."""
    out: list[tuple[int, int, int]] = []
    cur: list[int] | None = None  # [start, end, owner]
    for row, line in enumerate(lines):
        if covered[row]:
            if cur is not None:
                out.append((cur[0], cur[1], cur[2]))
                cur = None
            continue
        if not line.strip():
            continue
        if cur is not None and cur[2] == owner[row]:
            cur[1] = row
            continue
        if cur is not None:
            out.append((cur[0], cur[1], cur[2]))
        cur = [row, row, owner[row]]
    if cur is not None:
        out.append((cur[0], cur[1], cur[2]))
    return out


def _merge_trivial(
    found: list[_Piece], leftovers: list[_Piece], lines: Sequence[str]
) -> list[_Piece]:
    """All pieces in row order; closing-punctuation-only leftovers extend the piece before."""
    ordered = sorted([*found, *leftovers], key=lambda p: (p.start, p.end))
    out: list[_Piece] = []
    for piece in ordered:
        trivial = piece.kind != Kind.WINDOW and all(
            _TRIVIAL.fullmatch(line) for line in lines[piece.start : piece.end + 1]
        )
        if trivial and out and out[-1].end < piece.start and piece.leftover:
            out[-1].end = piece.end
            continue
        out.append(piece)
    return out


def _emit(
    path: str,
    language: str,
    piece: _Piece,
    lines: Sequence[str],
    max_tokens: int,
    count: P.TokenCounter,
) -> list[Chunk]:
    ranges = [(piece.start, piece.end)]
    if piece.splittable and piece.end - piece.start + 1 > P.SPLIT_MIN_LINES:
        text = f"{piece.header}\n" + "\n".join(lines[piece.start : piece.end + 1])
        if P.surely_over(text, max_tokens) or count(text) > max_tokens:
            budget = max(16, max_tokens - count(piece.header))
            ranges = P.split_by_units(piece.start, piece.end, piece.units, lines, count, budget)
    return P.make_parts(path, language, piece.kind, piece.name, ranges, lines, piece.header)

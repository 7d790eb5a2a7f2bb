"""Names of JavaScript / TypeScript functions bound by assignment, object literal or default
export (``res.json = function``, ``Layer.prototype.match = ...``, ``exports.f = () => ...``,
``const api = { get() {} }``, ``module.exports = function createApp``): the target as
written, ``module.exports`` / ``exports`` dropped (README, "Usage")."""

from __future__ import annotations

import re
from typing import Any

Node = Any  # tree_sitter.Node

_SPACES = re.compile(r"\s+")


def _text(src: bytes, node: Node) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", "replace")


_EXPORTS = ("module.exports", "exports")
# Expressions an object literal may sit in and still be bound (`const x = {...} as const`).
_OBJECT_WRAPPERS = frozenset({"parenthesized_expression", "as_expression", "satisfies_expression"})


def _drop_exports(target: str) -> str:
    """`module.exports.f` / `exports.f` -> `f`; `module.exports` / `exports` -> ``."""
    if target in _EXPORTS:
        return ""
    for prefix in _EXPORTS:
        if target.startswith(prefix + "."):
            return target[len(prefix) + 1 :]
    return target


def _key_text(src: bytes, key: Node) -> str:
    text = _SPACES.sub(" ", _text(src, key)).strip()
    return text[1:-1] if key.type == "string" and len(text) >= 2 else text


def _file_name(path: str) -> str:
    """What Node calls a module: the file's base name, its folder's for `index.js`."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts:
        return ""
    stem = parts[-1].split(".")[0] or parts[-1]
    return parts[-2] if stem == "index" and len(parts) > 1 else stem


def _object_owner(src: bytes, obj: Node) -> str | None:
    """The dotted name an object literal is bound to; "" when exported, None when unbound."""
    node = obj.parent
    while node is not None and node.type in _OBJECT_WRAPPERS:
        node = node.parent
    if node is None:
        return None
    if node.type == "variable_declarator":
        name = node.child_by_field_name("name")
        return _text(src, name) if name is not None and name.type == "identifier" else None
    if node.type == "assignment_expression":
        left = node.child_by_field_name("left")
        if left is None or left.type not in ("identifier", "member_expression"):
            return None
        return _drop_exports(_SPACES.sub("", _text(src, left)))
    if node.type == "pair" and node.parent is not None:
        outer = _object_owner(src, node.parent)
        key = node.child_by_field_name("key")
        if outer is None or key is None:
            return None
        return f"{outer}.{_key_text(src, key)}" if outer else _key_text(src, key)
    return "" if node.type == "export_statement" else None


def js_name(src: bytes, caps: dict[str, list[Node]], path: str) -> tuple[str, str] | None:
    """(owner, name) of a JS/TS function bound by assignment, object literal or default export.

    `res.json = function` -> (res, json); `exports.f = ...` -> ("", f); `module.exports =
    function g` -> ("", g), or the module's file name when anonymous; `const api = { get() {} }`
    -> (api, get); members of `module.exports = {...}` or of an unbound object -> ("", name).
    """
    if "name.assigned" in caps:  # `a = b.c = function`: the first target that says something
        left: Node | None = caps["name.assigned"][0]
        while left is not None and left.parent is not None:
            target = _drop_exports(_SPACES.sub("", _text(src, left)))
            if target:
                owner, _, name = target.rpartition(".")
                return owner, name
            right = left.parent.child_by_field_name("right")
            if right is None or right.type != "assignment_expression":
                return _anonymous_name(src, right, path)
            left = right.child_by_field_name("left")
        return None
    if "name.default" in caps:
        return _anonymous_name(src, caps["name.default"][0], path)
    if "name.member" in caps:
        key = caps["name.member"][0]
        obj = key.parent.parent if key.parent is not None else None
        owner = _object_owner(src, obj) if obj is not None and obj.type == "object" else None
        return owner or "", _key_text(src, key)
    return None


def _anonymous_name(src: bytes, fn: Node | None, path: str) -> tuple[str, str] | None:
    own = fn.child_by_field_name("name") if fn is not None else None
    name = _text(src, own) if own is not None else _file_name(path)
    return ("", name) if name else None

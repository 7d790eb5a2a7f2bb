"""JS/TS functions bound by assignment, object literal or default export get names and kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_embedder import FakeEmbedder

from codesearch.chunk import chunk_file
from codesearch.config import load_settings
from codesearch.index import Indexer
from codesearch.search import Searcher, SearchOptions
from codesearch.store import Store
from codesearch.types import Chunk, Filters

Row = tuple[str, str, int, int]  # kind, name, start_line, end_line

# The same sources are chunked as JavaScript, TypeScript and TSX.
EXTENSIONS = ("js", "ts", "tsx")


def rows(chunks: list[Chunk]) -> list[Row]:
    return [(c.kind, c.name, c.start_line, c.end_line) for c in chunks if c.kind != "module"]


def defs(path: str, text: str) -> list[Row]:
    chunks = chunk_file(path, text)
    assert not any(c.kind == "window" for c in chunks), "the sample must parse"
    return rows(chunks)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_member_assignment_is_a_method_named_by_its_target(ext: str) -> None:
    text = (
        "var res = Object.create(null);\n"
        "\n"
        "/**\n"
        " * Send a JSON response.\n"
        " */\n"
        "res.json = function json(obj) {\n"
        "  return this.send(JSON.stringify(obj));\n"
        "};\n"
    )
    assert defs(f"lib/response.{ext}", text) == [("method", "res.json", 3, 8)]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_prototype_assignment_keeps_prototype_in_the_name(ext: str) -> None:
    text = (
        "// Check if this route matches `path`.\n"
        "Layer.prototype.match = function (path) {\n"
        "  return path === this.path;\n"
        "};\n"
    )
    chunks = chunk_file(f"lib/layer.{ext}", text)
    assert rows(chunks) == [("method", "Layer.prototype.match", 1, 4)]
    assert chunks[0].header.splitlines()[1] == "Layer.prototype.match = function (path)"


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_module_exports_function_takes_its_own_name(ext: str) -> None:
    text = (
        "/** Create an application. */\n"
        "module.exports = function createApp() {\n"
        "  function inner() {\n"
        "    return 1;\n"
        "  }\n"
        "  res.local = function () {};\n"
        "  return { handle() {}, inner };\n"
        "};\n"
    )
    # the nested function, assignment and object method stay part of createApp
    assert defs(f"lib/express.{ext}", text) == [("function", "createApp", 1, 8)]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("lib/router/route.js", "route"),
        ("lib/router/index.js", "router"),  # index.js is named after its folder, as Node does
        ("index.ts", "index"),
        ("src/app.module.ts", "app"),
        ("ui/Widget.tsx", "Widget"),
    ],
)
def test_anonymous_module_exports_is_named_after_the_module(path: str, name: str) -> None:
    text = "'use strict';\n\n// The router.\nmodule.exports = function () {\n  return 1;\n};\n"
    assert defs(path, text) == [("function", name, 3, 6)]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_anonymous_default_export_is_named_after_the_module(ext: str) -> None:
    text = "/** Handle it. */\nexport default function () {\n  return 1;\n}\n"
    assert defs(f"src/handler.{ext}", text) == [("function", "handler", 1, 4)]
    arrow = "export default (a, b) => {\n  return a + b;\n};\n"
    assert defs(f"src/add/index.{ext}", arrow) == [("function", "add", 1, 3)]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_exports_prefixes_are_dropped(ext: str) -> None:
    text = (
        "/** Parse it. */\n"
        "exports.parse = (str) => {\n"
        "  return str.split(',');\n"
        "};\n"
        "\n"
        "module.exports.format = function format(obj) {\n"
        "  return String(obj);\n"
        "};\n"
        "\n"
        "exports.utils.trim = function (s) {\n"
        "  return s.trim();\n"
        "};\n"
    )
    assert defs(f"lib/utils.{ext}", text) == [
        ("function", "parse", 1, 4),
        ("function", "format", 6, 8),
        ("method", "utils.trim", 10, 12),
    ]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_chained_assignment_takes_the_first_meaningful_target(ext: str) -> None:
    text = (
        "// The router.\n"
        "var proto = module.exports = function (options) {\n"
        "  return options;\n"
        "};\n"
        "\n"
        "exports = module.exports = function createApplication() {\n"
        "  return 1;\n"
        "};\n"
        "\n"
        "module.exports = exports.handle = () => 2;\n"
    )
    assert defs(f"lib/router/index.{ext}", text) == [
        ("function", "proto", 1, 4),
        ("function", "createApplication", 6, 8),
        ("function", "handle", 10, 10),
    ]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_plain_variable_assignment_is_a_function(ext: str) -> None:
    text = "let handler;\n\n// Fallback.\nhandler = function () {\n  return 1;\n};\n"
    assert defs(f"a.{ext}", text) == [("function", "handler", 3, 6)]


OBJECT_LITERAL = """\
const api = {
  name: 'api',
  retries: 3,
  /** Fetch one item. */
  get: function (id) {
    return id;
  },
  // Store one item.
  put(id, value) {
    return value;
  },
  remove: async (id) => {
    return id;
  },
  'with-dash': function () {},
  nested: {
    deep() {
      return 1;
    },
  },
  handler: other,
};
"""


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_object_literal_functions_are_methods_of_the_bound_name(ext: str) -> None:
    assert defs(f"lib/api.{ext}", OBJECT_LITERAL) == [
        ("method", "api.get", 4, 7),
        ("method", "api.put", 8, 11),
        ("method", "api.remove", 12, 14),
        ("method", "api.with-dash", 15, 15),
        ("method", "api.nested.deep", 17, 19),
    ]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_module_exports_object_members_are_named_alone(ext: str) -> None:
    text = (
        "module.exports = {\n"
        "  version: '1.0',\n"
        "  // Start it.\n"
        "  start() {\n"
        "    return 1;\n"
        "  },\n"
        "  stop: () => 0,\n"
        "};\n"
    )
    assert defs(f"lib/server.{ext}", text) == [
        ("function", "start", 3, 6),
        ("function", "stop", 7, 8),  # the closing `};` joins the last member
    ]
    member = "foo.bar = {\n  get: function () {\n    return 2;\n  },\n};\n"
    assert defs(f"lib/server.{ext}", member) == [("method", "foo.bar.get", 2, 5)]


@pytest.mark.parametrize("ext", ("ts", "tsx"))
def test_typescript_annotated_objects(ext: str) -> None:
    text = (
        "interface Api {\n"
        "  get(id: string): string;\n"
        "}\n"
        "\n"
        "const api: Api = {\n"
        "  get(id: string): string {\n"
        "    return id;\n"
        "  },\n"
        "};\n"
        "\n"
        "export const routes = {\n"
        "  home: (req: Request): Response => {\n"
        "    return new Response();\n"
        "  },\n"
        "} as const;\n"
        "\n"
        "export default {\n"
        "  setup(): void {\n"
        "    return;\n"
        "  },\n"
        "} satisfies Plugin;\n"
    )
    got = defs(f"src/plugin.{ext}", text)
    assert [r for r in got if r[0] != "class"] == [
        ("method", "api.get", 6, 8),
        ("method", "routes.home", 12, 14),
        ("function", "setup", 18, 20),
    ]


def test_tsx_component_assigned_to_a_member() -> None:
    text = (
        "import React from 'react';\n"
        "\n"
        "/** The header of a card. */\n"
        "Card.Header = ({ title }: { title: string }) => {\n"
        '  return <h2 className="card">{title}</h2>;\n'
        "};\n"
        "\n"
        "export default function () {\n"
        "  return <Card />;\n"
        "}\n"
    )
    chunks = chunk_file("ui/Card.tsx", text)
    assert rows(chunks) == [("method", "Card.Header", 3, 6), ("function", "Card", 8, 10)]
    assert {c.language for c in chunks} == {"tsx"}


def test_unbound_object_members_keep_their_plain_name() -> None:
    text = "register({\n  // Run it.\n  run() {\n    return 1;\n  },\n});\n"
    assert defs("plugin.js", text) == [("function", "run", 2, 6)]


def test_class_methods_are_unchanged() -> None:
    text = (
        "class Router {\n"
        "  route(path) {\n"
        "    return { handle() {} };\n"
        "  }\n"
        "}\n"
        "Router.prototype.use = function use(fn) {\n"
        "  return fn;\n"
        "};\n"
    )
    assert defs("router.js", text) == [
        ("class", "Router", 1, 1),
        ("method", "Router.route", 2, 5),
        ("method", "Router.prototype.use", 6, 8),
    ]


def test_kind_filter_finds_assigned_functions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "response.js").write_text(
        "var res = module.exports = {};\n"
        "\n"
        "/** Send a json body. */\n"
        "res.json = function json(obj) {\n"
        "  return send(JSON.stringify(obj));\n"
        "};\n"
        "\n"
        "/** Send a json body with a status. */\n"
        "exports.sendJson = (status, obj) => {\n"
        "  return send(status, JSON.stringify(obj));\n"
        "};\n",
        encoding="utf-8",
    )
    (repo / "lib" / "api.ts").write_text(
        "export const api = {\n  /** Send a json request. */\n  post(body: unknown) {\n"
        "    return send(JSON.stringify(body));\n  },\n};\n",
        encoding="utf-8",
    )
    fake = FakeEmbedder()
    settings = load_settings()
    with Store.open(settings.index_path(repo), create=True) as store:
        Indexer(repo, store, fake, settings).run()
        searcher = Searcher(store, fake)

        def names(kind: str) -> set[str]:
            options = SearchOptions(k=20, filters=Filters(kinds=(kind,)))
            return {h.name for h in searcher.search("send a json body", options)}

        assert names("function") == {"sendJson"}
        assert names("method") == {"res.json", "api.post"}

/**
 * What a user sees from a search answer: run with `npm test` (plain Node, no VS Code).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DETAIL_MAX,
  fileUri,
  formatStatus,
  kindIcon,
  noResultsMessage,
  reindexMessage,
  toLocation,
  toPickItem,
  toSearchView,
} from "../mapping";

/** A result as the server sends it (every field present). */
function result(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    uri: "file:///home/dev/proj/src/retry.py",
    range: { start: { line: 9, character: 0 }, end: { line: 19, character: 12 } },
    path: "src/retry.py",
    root: "/home/dev/proj",
    name: "retry_with_backoff",
    kind: "function",
    language: "python",
    score: 0.8731,
    snippet: "\n\n    def retry_with_backoff(fn, attempts=3):\n        ...\n",
    start_line: 10,
    end_line: 20,
    ...overrides,
  };
}

describe("search results become quick-pick items", () => {
  it("keeps the server's order (best first) and fills label, description, detail", () => {
    const answer = {
      query: "retry with backoff",
      results: [
        result(),
        result({ name: "Client", kind: "class", path: "src/client.py", start_line: 3, score: 0.5 }),
        result({ name: "send", kind: "method", path: "src/client.py", start_line: 40, score: 0.1 }),
      ],
      notices: [],
    };
    const view = toSearchView(answer, "retry with backoff");
    assert.equal(view.emptyMessage, undefined);
    assert.deepEqual(view.notices, []);
    assert.deepEqual(
      view.items.map((item) => item.label),
      ["$(symbol-function) retry_with_backoff", "$(symbol-class) Client", "$(symbol-method) send"],
    );
    assert.deepEqual(
      view.items.map((item) => item.description),
      ["src/retry.py:10", "src/client.py:3", "src/client.py:40"],
    );
    assert.equal(view.items[0].detail, "def retry_with_backoff(fn, attempts=3):  ·  score 0.87");
    assert.equal(view.items[1].detail.endsWith("score 0.50"), true);
  });

  it("gives each kind its codicon, and unknown or missing kinds a file icon", () => {
    const expected: Record<string, string> = {
      function: "$(symbol-function)",
      method: "$(symbol-method)",
      class: "$(symbol-class)",
      module: "$(symbol-module)",
      section: "$(symbol-text)",
      window: "$(file)",
      image: "$(file-media)",
      "pdf-page": "$(file-media)",
      "something-new": "$(file)",
      toString: "$(file)",
    };
    for (const [kind, icon] of Object.entries(expected)) {
      assert.equal(kindIcon(kind), icon, kind);
      assert.equal(toPickItem(result({ kind }))?.label.startsWith(`${icon} `), true, kind);
    }
    assert.equal(kindIcon(undefined), "$(file)");
    assert.equal(kindIcon(42), "$(file)");
  });

  it("labels a result without a name by its file name", () => {
    const item = toPickItem(result({ name: "", kind: "window", path: "docs/guide/intro.md" }));
    assert.equal(item?.label, "$(file) intro.md");
    assert.equal(item?.description, "docs/guide/intro.md:10");
    const noName = toPickItem(result({ name: undefined, path: "Makefile" }));
    assert.equal(noName?.label, "$(symbol-function) Makefile");
  });

  it("takes the first non-blank snippet line, trimmed and capped, with the score", () => {
    const long = "x".repeat(DETAIL_MAX + 40);
    const item = toPickItem(result({ snippet: `\n   \t\n   ${long}   \nsecond line`, score: 0.5 }));
    assert.equal(item?.detail, `${"x".repeat(DETAIL_MAX)}…  ·  score 0.50`);
    const exact = "y".repeat(DETAIL_MAX);
    assert.equal(
      toPickItem(result({ snippet: exact, score: 1 }))?.detail,
      `${exact}  ·  score 1.00`,
    );
    // Capping never splits a character outside the BMP (a surrogate pair).
    const emoji = `${"a".repeat(DETAIL_MAX - 1)}😀😀`;
    assert.equal(
      toPickItem(result({ snippet: emoji }))?.detail.split("  ·  ")[0],
      `${"a".repeat(DETAIL_MAX - 1)}😀…`,
    );
    // Windows line endings: only the first line shows.
    assert.equal(
      toPickItem(result({ snippet: "first()\r\nsecond()", score: 0.1234 }))?.detail,
      "first()  ·  score 0.12",
    );
  });

  it("shows what it has when the snippet or score is missing", () => {
    assert.equal(toPickItem(result({ snippet: "", score: 0.25 }))?.detail, "score 0.25");
    assert.equal(toPickItem(result({ snippet: "   \n  ", score: undefined }))?.detail, "");
    assert.equal(
      toPickItem(result({ score: "0.9" }))?.detail,
      "def retry_with_backoff(fn, attempts=3):",
    );
    assert.equal(toPickItem(result({ score: Number.NaN }))?.detail.includes("score"), false);
  });
});

describe("locations", () => {
  it("passes the server's UTF-16 range through unchanged on a non-ASCII line", () => {
    // Line 4 is `naïve = "😀"; find_me()`: `find_me` starts at UTF-16 column 14
    // (the emoji is two code units), not at code-point column 13 or byte column 16.
    const r = result({
      uri: "file:///home/dev/proj/src/na%C3%AFve.py",
      path: "src/naïve.py",
      range: { start: { line: 4, character: 14 }, end: { line: 4, character: 23 } },
      start_line: 5,
      end_line: 5,
    });
    assert.deepEqual(toLocation(r), {
      uri: "file:///home/dev/proj/src/na%C3%AFve.py",
      range: { start: { line: 4, character: 14 }, end: { line: 4, character: 23 } },
      wholeLines: false,
    });
    assert.equal(toPickItem(r)?.description, "src/naïve.py:5");
  });

  it("keeps the matched lines of a long definition as the selection", () => {
    const selectionRange = { start: { line: 14, character: 4 }, end: { line: 17, character: 9 } };
    const r = result({ selectionRange, match_start: 15, match_end: 18 });
    const location = toLocation(r);
    assert.deepEqual(location?.range, result().range);
    assert.deepEqual(location?.selection, selectionRange);
    assert.match(toPickItem(r)?.detail ?? "", /matched lines 15-18/);
    // the whole definition matched, or a selection outside the range: nothing extra
    assert.equal(toLocation(result({ selectionRange: result().range }))?.selection, undefined);
    const outside = { start: { line: 30, character: 0 }, end: { line: 31, character: 0 } };
    assert.equal(toLocation(result({ selectionRange: outside }))?.selection, undefined);
    assert.match(toPickItem(result({ confident: false }))?.detail ?? "", /weak match/);
  });

  it("falls back to start_line-1..end_line-1 (whole lines) when there is no range", () => {
    const location = toLocation(result({ range: undefined, start_line: 10, end_line: 20 }));
    assert.deepEqual(location, {
      uri: "file:///home/dev/proj/src/retry.py",
      range: { start: { line: 9, character: 0 }, end: { line: 19, character: 0 } },
      wholeLines: true,
    });
  });

  it("falls back the same way when the range is malformed", () => {
    const malformed = [
      { start: { line: 9 }, end: { line: 19, character: 0 } },
      { start: { line: -1, character: 0 }, end: { line: 19, character: 0 } },
      { start: { line: 19, character: 5 }, end: { line: 9, character: 0 } },
      { start: { line: 1.5, character: 0 }, end: { line: 19, character: 0 } },
      "10-20",
      null,
    ];
    for (const range of malformed) {
      const location = toLocation(result({ range }));
      assert.equal(location?.wholeLines, true, JSON.stringify(range));
      assert.deepEqual(location?.range.start, { line: 9, character: 0 });
    }
  });

  it("copes with missing or odd line numbers", () => {
    const noLines = toLocation(
      result({ range: undefined, start_line: undefined, end_line: undefined }),
    );
    assert.deepEqual(noLines?.range, {
      start: { line: 0, character: 0 },
      end: { line: 0, character: 0 },
    });
    const onlyStart = toLocation(result({ range: undefined, start_line: 7, end_line: undefined }));
    assert.deepEqual(onlyStart?.range, {
      start: { line: 6, character: 0 },
      end: { line: 6, character: 0 },
    });
    const backwards = toLocation(result({ range: undefined, start_line: 7, end_line: 3 }));
    assert.deepEqual(backwards?.range.end, { line: 6, character: 0 });
    // Without start_line the description takes the line from the range.
    assert.equal(toPickItem(result({ start_line: undefined }))?.description, "src/retry.py:10");
  });

  it("builds a file URI from root and path when the server sent no uri", () => {
    const location = toLocation(
      result({ uri: undefined, root: "/home/dev/my proj", path: "src/ü.py" }),
    );
    assert.equal(location?.uri, "file:///home/dev/my%20proj/src/%C3%BC.py");
    assert.equal(fileUri("C:\\Users\\dev\\proj\\a b.py"), "file:///C:/Users/dev/proj/a%20b.py");
    assert.equal(fileUri("/tmp/x#1.py"), "file:///tmp/x%231.py");
  });

  it("labels a result without path by the file name from its URI", () => {
    const item = toPickItem(
      result({ path: undefined, name: "", uri: "file:///p/src/na%C3%AFve.py" }),
    );
    assert.equal(item?.label, "$(symbol-function) naïve.py");
    assert.equal(item?.description, "naïve.py:10");
  });
});

describe("whole answers", () => {
  it("has a clear message and no items when nothing was found", () => {
    const view = toSearchView({ query: "quantum flux", results: [], notices: [] }, "quantum flux");
    assert.deepEqual(view.items, []);
    assert.equal(view.emptyMessage, noResultsMessage("quantum flux"));
    assert.match(view.emptyMessage ?? "", /no results for "quantum flux"/);
  });

  it("passes server notices on, and tolerates a missing or odd notices field", () => {
    const notices = ["Index of /home/dev/proj is still being built (40%)."];
    const view = toSearchView({ query: "q", results: [result()], notices }, "q");
    assert.deepEqual(view.notices, notices);
    assert.deepEqual(toSearchView({ query: "q", results: [result()] }, "q").notices, []);
    assert.deepEqual(toSearchView({ results: [result()], notices: "oops" }, "q").notices, []);
    assert.deepEqual(toSearchView({ results: [], notices: [3, "", "ok"] }, "q").notices, ["ok"]);
  });

  it("shows notices together with the empty message when nothing was found", () => {
    const view = toSearchView({ query: "q", results: [], notices: ["No index yet."] }, "q");
    assert.deepEqual(view.notices, ["No index yet."]);
    assert.notEqual(view.emptyMessage, undefined);
  });

  it("survives answers that are not what the contract says", () => {
    for (const answer of [null, undefined, "text", 42, [], { results: "nope" }, {}]) {
      const view = toSearchView(answer, "my query");
      assert.deepEqual(view.items, [], JSON.stringify(answer));
      assert.match(view.emptyMessage ?? "", /my query/);
    }
  });

  it("leaves out results it cannot open, keeps the rest in order, and says so", () => {
    const answer = {
      results: [
        result({ name: "a" }),
        null,
        result({ name: "b", uri: undefined, root: undefined }),
        "junk",
        result({ name: "c" }),
      ],
    };
    const view = toSearchView(answer, "q");
    assert.deepEqual(
      view.items.map((item) => item.label),
      ["$(symbol-function) a", "$(symbol-function) c"],
    );
    assert.deepEqual(view.notices, ["Codesearch: 3 results without a location were left out."]);
  });
});

describe("reindex and status", () => {
  it("reports the reindexed roots", () => {
    assert.equal(
      reindexMessage({ roots: ["/home/dev/proj"] }),
      "Codesearch: reindexed /home/dev/proj.",
    );
    assert.equal(
      reindexMessage({ roots: ["/a", "/b"] }),
      "Codesearch: reindexed 2 folders: /a, /b.",
    );
    assert.match(reindexMessage({ roots: [] }), /nothing to reindex/);
    assert.match(reindexMessage(null), /nothing to reindex/);
  });

  it("formats the status object for the output channel", () => {
    const lines = formatStatus({
      daemon: { pid: 4242, uptime_s: 12 },
      repos: [{ root: "/home/dev/proj", state: "ready", files: 120, chunks: 900, model: "minilm" }],
    });
    assert.deepEqual(lines, [
      "Daemon: running",
      "  pid: 4242",
      "  uptime_s: 12",
      "Repositories: 1",
      "  /home/dev/proj: ready (120 files, 900 chunks)",
      "    model: minilm",
    ]);
    const empty = formatStatus({ daemon: null, repos: [] });
    assert.match(empty[0], /not running/);
    assert.match(empty[1], /none indexed/);
    assert.deepEqual(formatStatus("nope"), ["The server sent no status."]);
    assert.deepEqual(formatStatus({ repos: [{}] }).slice(1), [
      "Repositories: 1",
      "  (unknown root): unknown",
    ]);
  });
});

/**
 * The glue in `extension.ts`, driven through small stand-ins for the `vscode` API and the
 * language client (VS Code itself is not needed): the commands a user runs do what they say.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Module from "node:module";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";

type Handler = (...args: unknown[]) => unknown;

class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    this.start = a instanceof Position ? a : new Position(a, b as number);
    this.end = b instanceof Position ? b : new Position(c as number, d as number);
  }
}

class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    super(anchor, active);
  }
}

/** A document of `lines`, with VS Code's clamping of out-of-range positions. */
function fakeDocument(uri: string, lines: string[]) {
  const clamp = (p: Position): Position => {
    const line = Math.min(Math.max(p.line, 0), lines.length - 1);
    return new Position(line, Math.min(Math.max(p.character, 0), lines[line].length));
  };
  return {
    uri,
    lineCount: lines.length,
    lineAt: (line: number) => ({ range: new Range(line, 0, line, lines[line].length) }),
    validateRange: (r: Range) => new Range(clamp(r.start), clamp(r.end)),
  };
}

interface World {
  commands: Map<string, Handler>;
  settings: Record<string, unknown>;
  inputs: (string | undefined)[];
  pick: (items: { label: string; description?: string; detail?: string }[]) => unknown;
  info: string[];
  errors: string[];
  channelLines: string[];
  opened: string[];
  editor: { selection?: Selection; revealed?: Range; revealRange: (range: Range) => void };
  files: Record<string, string[]>;
  clients: FakeClient[];
  startError?: Error;
  answers: Record<string, (params: unknown) => unknown>;
}

let world: World;

class FakeClient {
  readonly requests: { method: string; params: unknown }[] = [];
  state = 2; // State.Running
  disposed = false;
  constructor(
    readonly id: string,
    readonly name: string,
    readonly serverOptions: { command: string; args: string[] },
    readonly clientOptions: unknown,
  ) {
    world.clients.push(this);
  }
  async start(): Promise<void> {
    if (world.startError !== undefined) {
      throw world.startError;
    }
  }
  async dispose(): Promise<void> {
    this.disposed = true;
  }
  async sendRequest(type: string | { method: string }, params: unknown): Promise<unknown> {
    const method = typeof type === "string" ? type : type.method;
    this.requests.push({ method, params });
    const key =
      method === "workspace/executeCommand" ? (params as { command: string }).command : method;
    const answer = world.answers[key];
    if (answer === undefined) {
      throw new Error(`unexpected request ${key}`);
    }
    return answer(params);
  }
}

const fakeVscode = {
  Position,
  Range,
  Selection,
  CancellationError: class CancellationError extends Error {},
  ProgressLocation: { Notification: 15, Window: 10 },
  TextEditorRevealType: { InCenterIfOutsideViewport: 2, AtTop: 3 },
  Uri: { parse: (value: string) => ({ toString: () => value }) },
  commands: {
    registerCommand: (id: string, handler: Handler) => {
      assert.equal(world.commands.has(id), false, `command ${id} registered twice`);
      world.commands.set(id, handler);
      return { dispose: () => world.commands.delete(id) };
    },
    executeCommand: async () => undefined,
  },
  workspace: {
    getConfiguration: () => ({
      get: (key: string, fallback?: unknown) => world.settings[key] ?? fallback,
    }),
    onDidChangeConfiguration: () => ({ dispose: () => undefined }),
    openTextDocument: async (uri: { toString(): string }) => {
      const lines = world.files[uri.toString()];
      assert.notEqual(lines, undefined, `no such file ${uri.toString()}`);
      world.opened.push(uri.toString());
      return fakeDocument(uri.toString(), lines);
    },
  },
  window: {
    activeTextEditor: undefined,
    createOutputChannel: () => ({
      appendLine: (line: string) => world.channelLines.push(line),
      clear: () => world.channelLines.splice(0),
      show: () => undefined,
      dispose: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    }),
    showInputBox: async () => world.inputs.shift(),
    showQuickPick: async (items: { label: string }[]) => world.pick(items),
    showInformationMessage: async (message: string) => {
      world.info.push(message);
      return undefined;
    },
    showErrorMessage: async (message: string) => {
      world.errors.push(message);
      return undefined;
    },
    withProgress: async (_options: unknown, task: Handler) =>
      task({ report: () => undefined }, { isCancellationRequested: false }),
    showTextDocument: async () => world.editor,
  },
};

class ResponseError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const fakeClientModule = {
  LanguageClient: FakeClient,
  State: { Stopped: 1, Running: 2, Starting: 3 },
  ErrorCodes: { MethodNotFound: -32601 },
  LSPErrorCodes: { RequestCancelled: -32800 },
  ResponseError,
  ExecuteCommandRequest: { type: { method: "workspace/executeCommand" } },
};

// Serve the stand-ins to `require("vscode")` and `require("vscode-languageclient/node")`.
const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const originalLoad = loader._load;
loader._load = function (request: string, ...rest: unknown[]): unknown {
  if (request === "vscode") {
    return fakeVscode;
  }
  if (request === "vscode-languageclient/node") {
    return fakeClientModule;
  }
  return originalLoad.call(this, request, ...rest);
};

type Extension = typeof import("../extension");

/** A fresh copy of the extension (its module state reset), activated. */
async function activate(): Promise<Extension> {
  const path = require.resolve("../extension");
  delete require.cache[path];
  const ext = require(path) as Extension;
  ext.activate({ subscriptions: [] } as never);
  await flush();
  return ext;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function run(id: string): Promise<void> {
  const handler = world.commands.get(id);
  assert.notEqual(handler, undefined, `command ${id} is not registered`);
  await (handler as Handler)();
  await flush();
}

const URI = "file:///home/dev/proj/src/na%C3%AFve.py";

function answer(results: unknown[], notices: string[] = []) {
  return () => ({ query: "q", results, notices });
}

beforeEach(() => {
  world = {
    commands: new Map(),
    settings: {},
    inputs: [],
    pick: (items) => items[0],
    info: [],
    errors: [],
    channelLines: [],
    opened: [],
    editor: {
      revealRange(range: Range) {
        this.revealed = range;
      },
    },
    files: { [URI]: ["import x", "", "def f():", "    pass", 'naïve = "😀"; find_me()', ""] },
    clients: [],
    answers: {},
  };
});

afterEach(async () => {
  await flush();
});

describe("extension glue", () => {
  it("contributes, activates on and registers the same commands, none clashing with the server's", async () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
    const contributed: string[] = manifest.contributes.commands.map(
      (c: { command: string }) => c.command,
    );
    assert.deepEqual(contributed.sort(), [
      "codesearch.reindexWorkspace",
      "codesearch.semanticSearch",
      "codesearch.showStatus",
    ]);
    for (const id of contributed) {
      assert.ok(manifest.activationEvents.includes(`onCommand:${id}`), id);
    }
    assert.ok(manifest.activationEvents.includes("onStartupFinished"));
    assert.equal(manifest.main, "./out/extension.js");
    await activate();
    assert.deepEqual([...world.commands.keys()].sort(), contributed);
    for (const serverCommand of ["codesearch.search", "codesearch.reindex", "codesearch.status"]) {
      assert.equal(contributed.includes(serverCommand), false, serverCommand);
    }
  });

  it("starts codesearch-lsp from PATH by default, or the configured command", async () => {
    await activate();
    assert.deepEqual(world.clients[0].serverOptions, { command: "codesearch-lsp", args: [] });
    world.settings = { serverPath: ["/venv/bin/python", "-m", "lsp.server"], serverArgs: ["-v"] };
    world.commands.clear(); // a second activation, as after a window reload
    await activate();
    assert.deepEqual(world.clients[1].serverOptions, {
      command: "/venv/bin/python",
      args: ["-m", "lsp.server", "-v"],
    });
  });

  it("searches, shows the results and opens the chosen one with its range selected", async () => {
    world.inputs = ["where is find_me called"];
    world.settings = { maxResults: 7 };
    world.answers["codesearch/search"] = answer([
      { uri: URI, path: "src/naïve.py", name: "f", kind: "function", start_line: 3, end_line: 4 },
      {
        uri: URI,
        path: "src/naïve.py",
        name: "",
        kind: "window",
        start_line: 5,
        end_line: 5,
        range: { start: { line: 4, character: 14 }, end: { line: 4, character: 23 } },
      },
    ]);
    let shown: { label: string; description?: string }[] = [];
    world.pick = (items) => {
      shown = items;
      return items[1];
    };
    await activate();
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.clients[0].requests, [
      { method: "codesearch/search", params: { query: "where is find_me called", k: 7 } },
    ]);
    assert.deepEqual(
      shown.map((item) => [item.label, item.description]),
      [
        ["$(symbol-function) f", "src/naïve.py:3"],
        ["$(file) naïve.py", "src/naïve.py:5"],
      ],
    );
    assert.deepEqual(world.opened, [URI]);
    // Cursor at the start of the result, selection up to its end, UTF-16 columns as sent.
    assert.deepEqual(world.editor.selection?.active, new Position(4, 14));
    assert.deepEqual(world.editor.selection?.anchor, new Position(4, 23));
    assert.deepEqual(world.editor.revealed, new Range(4, 14, 4, 23));
    assert.deepEqual(world.errors, []);
  });

  it("opens a long definition of which a part matched with that part selected", async () => {
    world.inputs = ["find_me"];
    world.answers["codesearch/search"] = answer([
      {
        uri: URI,
        path: "src/naïve.py",
        name: "f",
        kind: "function",
        start_line: 3,
        end_line: 5,
        match_start: 5,
        match_end: 5,
        range: { start: { line: 2, character: 0 }, end: { line: 4, character: 23 } },
        selectionRange: { start: { line: 4, character: 0 }, end: { line: 4, character: 23 } },
      },
    ]);
    await activate();
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.editor.selection?.active, new Position(4, 0));
    assert.deepEqual(world.editor.selection?.anchor, new Position(4, 23));
    assert.deepEqual(world.editor.revealed, new Range(4, 0, 4, 23));
  });

  it("selects whole lines when a result has no range", async () => {
    world.inputs = ["f"];
    world.answers["codesearch/search"] = answer([
      { uri: URI, path: "src/naïve.py", name: "f", kind: "function", start_line: 3, end_line: 4 },
    ]);
    await activate();
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.editor.selection?.active, new Position(2, 0));
    assert.deepEqual(world.editor.selection?.anchor, new Position(3, "    pass".length));
  });

  it("says so when nothing is found, and shows the server's notices", async () => {
    world.inputs = ["nothing here"];
    world.answers["codesearch/search"] = answer([], ["The index is still being built."]);
    let picked = false;
    world.pick = () => {
      picked = true;
      return undefined;
    };
    await activate();
    await run("codesearch.semanticSearch");
    assert.equal(picked, false);
    assert.equal(world.info[0], "The index is still being built.");
    assert.match(world.info[1], /no results for "nothing here"/);
  });

  it("does nothing when the question box is dismissed or left empty", async () => {
    world.inputs = [undefined];
    await activate();
    await run("codesearch.semanticSearch");
    world.inputs = ["   "];
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.clients[0].requests, []);
    assert.deepEqual([...world.info, ...world.errors], []);
  });

  it("falls back to executeCommand codesearch.search when the request is unknown", async () => {
    world.inputs = ["q"];
    world.answers["codesearch/search"] = () => {
      throw new ResponseError(-32601, "Method not found");
    };
    world.answers["codesearch.search"] = answer([{ uri: URI, name: "f", start_line: 1 }]);
    await activate();
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.clients[0].requests[1], {
      method: "workspace/executeCommand",
      params: { command: "codesearch.search", arguments: ["q", { k: 20 }] },
    });
    assert.deepEqual(world.opened, [URI]);
  });

  it("turns a server error into one clear error message", async () => {
    world.inputs = ["q"];
    world.answers["codesearch/search"] = () => {
      throw new ResponseError(-32603, "the daemon is not reachable");
    };
    await activate();
    await run("codesearch.semanticSearch");
    assert.deepEqual(world.errors, ["Codesearch: the daemon is not reachable"]);
  });

  it("reindexes the workspace and shows the status in an output channel", async () => {
    world.answers["codesearch.reindex"] = () => ({ roots: ["/home/dev/proj"] });
    world.answers["codesearch.status"] = () => ({
      daemon: null,
      repos: [{ root: "/home/dev/proj", state: "ready", files: 3, chunks: 9 }],
    });
    await activate();
    await run("codesearch.reindexWorkspace");
    await run("codesearch.showStatus");
    assert.deepEqual(
      world.clients[0].requests.map((r) => r.params),
      [
        { command: "codesearch.reindex", arguments: [] },
        { command: "codesearch.status", arguments: [] },
      ],
    );
    assert.deepEqual(world.info, ["Codesearch: reindexed /home/dev/proj."]);
    assert.ok(world.channelLines.includes("  /home/dev/proj: ready (3 files, 9 chunks)"));
    assert.ok(world.channelLines.includes("Server: codesearch-lsp"));
  });

  it("explains how to fix a server that cannot start, and retries on the next command", async () => {
    world.startError = new Error("spawn codesearch-lsp ENOENT");
    await activate();
    assert.equal(world.errors.length, 1);
    assert.match(world.errors[0], /codesearch-lsp.*ENOENT.*codesearch\.serverPath/);
    assert.equal(world.clients[0].disposed, true);
    world.startError = undefined;
    world.answers["codesearch.reindex"] = () => ({ roots: ["/p"] });
    await run("codesearch.reindexWorkspace");
    assert.equal(world.clients.length, 2);
    assert.deepEqual(world.info, ["Codesearch: reindexed /p."]);
  });
});

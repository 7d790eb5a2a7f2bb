/**
 * How the server command is found from the settings: run with `npm test` (plain Node).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_SERVER, describeCommand, resolveServerCommand } from "../config";

describe("server command", () => {
  it("defaults to codesearch-lsp on PATH", () => {
    assert.equal(DEFAULT_SERVER, "codesearch-lsp");
    assert.deepEqual(resolveServerCommand(undefined, undefined), {
      command: "codesearch-lsp",
      args: [],
    });
    assert.deepEqual(resolveServerCommand("", []), { command: "codesearch-lsp", args: [] });
    assert.deepEqual(resolveServerCommand("   ", []), { command: "codesearch-lsp", args: [] });
    assert.deepEqual(resolveServerCommand([], ["-v"]), { command: "codesearch-lsp", args: ["-v"] });
    assert.deepEqual(resolveServerCommand(7, "x"), { command: "codesearch-lsp", args: [] });
  });

  it("takes a path as one program, even with spaces", () => {
    assert.deepEqual(
      resolveServerCommand("C:\\Program Files\\cs\\codesearch-lsp.exe", ["--log", "x"]),
      {
        command: "C:\\Program Files\\cs\\codesearch-lsp.exe",
        args: ["--log", "x"],
      },
    );
  });

  it("takes an array as a command with arguments, serverArgs appended", () => {
    assert.deepEqual(resolveServerCommand(["python", "-m", "lsp.server"], ["--verbose"]), {
      command: "python",
      args: ["-m", "lsp.server", "--verbose"],
    });
    assert.deepEqual(resolveServerCommand(["", "uv", 3, "run", "codesearch-lsp"], [1, "a"]), {
      command: "uv",
      args: ["run", "codesearch-lsp", "a"],
    });
  });

  it("describes the command for messages, quoting parts with spaces", () => {
    assert.equal(
      describeCommand({ command: "/opt/my tools/codesearch-lsp", args: ["--x", ""] }),
      '"/opt/my tools/codesearch-lsp" --x ""',
    );
  });
});

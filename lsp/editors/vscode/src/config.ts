/**
 * Pure resolution of the server command from the settings (no `vscode` import, unit-tested).
 */

/** The program started when `codesearch.serverPath` is not set: looked up on PATH. */
export const DEFAULT_SERVER = "codesearch-lsp";

export interface ServerCommand {
  command: string;
  args: string[];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/**
 * `codesearch.serverPath` (a program, or a command as an array) plus `codesearch.serverArgs`.
 *
 * A blank string, an empty array or a mistyped value means the default, `codesearch-lsp`
 * found on PATH. Blank array entries are dropped; `serverArgs` come after the array's own
 * arguments.
 */
export function resolveServerCommand(serverPath: unknown, serverArgs: unknown): ServerCommand {
  const extra = strings(serverArgs);
  let parts: string[] = [];
  if (typeof serverPath === "string") {
    parts = serverPath.trim() === "" ? [] : [serverPath.trim()];
  } else {
    parts = strings(serverPath).filter((p) => p.trim() !== "");
  }
  if (parts.length === 0) {
    return { command: DEFAULT_SERVER, args: extra };
  }
  return { command: parts[0], args: [...parts.slice(1), ...extra] };
}

/** A one-line description of the command, for error messages and the output channel. */
export function describeCommand(cmd: ServerCommand): string {
  return [cmd.command, ...cmd.args]
    .map((part) => (/[\s"']/.test(part) || part === "" ? JSON.stringify(part) : part))
    .join(" ");
}

/**
 * Pure mapping from the codesearch language server's answers to what the editor shows.
 *
 * No `vscode` import here: this module is unit-tested with plain Node (`npm test`).
 * Everything the server sends is treated as untrusted JSON: missing or mistyped
 * fields fall back to something sensible instead of throwing.
 */

/** A position as the server sends it: 0-based line, UTF-16 code-unit character. */
export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** One result of `codesearch/search` (fields are optional: the server may omit some). */
export interface ServerResult {
  uri?: string;
  range?: Range;
  path?: string;
  root?: string;
  name?: string;
  kind?: string;
  language?: string;
  score?: number;
  snippet?: string;
  start_line?: number;
  end_line?: number;
  /** The lines that matched best (a part of a long definition); `range` otherwise. */
  selectionRange?: Range;
  match_start?: number;
  match_end?: number;
  /** False when the best matches are weak. */
  confident?: boolean;
}

/** Where to jump: a URI string and a 0-based range ready for `new vscode.Range(...)`. */
export interface LocationData {
  uri: string;
  range: Range;
  /**
   * True when the range was rebuilt from 1-based `start_line`/`end_line` because the
   * server sent no usable `range`: the end character is then 0 and the caller should
   * extend the selection to the end of `range.end.line`.
   */
  wholeLines: boolean;
  /**
   * The lines that matched best when they are only part of `range` (a long definition of
   * which one part matched): what to select. Undefined when the whole result matched.
   */
  selection?: Range;
}

/** The data of one quick-pick item (the extension adds nothing but the vscode types). */
export interface PickItemData {
  label: string;
  description: string;
  detail: string;
  location: LocationData;
}

/** A whole search answer, ready to show. */
export interface SearchView {
  items: PickItemData[];
  /** Server notices and our own (skipped results), each to be shown as an info message. */
  notices: string[];
  /** Set when there is nothing to pick from: the message to show instead of a quick pick. */
  emptyMessage?: string;
}

/** Longest snippet line shown in an item's detail, in characters (an ellipsis is added). */
export const DETAIL_MAX = 80;

const KIND_ICONS: Record<string, string> = {
  function: "symbol-function",
  method: "symbol-method",
  class: "symbol-class",
  module: "symbol-module",
  section: "symbol-text",
  window: "file",
  image: "file-media",
  "pdf-page": "file-media",
};

/** The codicon (`$(name)`) for a result kind; unknown or missing kinds get `$(file)`. */
export function kindIcon(kind: unknown): string {
  const name =
    typeof kind === "string" && Object.hasOwn(KIND_ICONS, kind) ? KIND_ICONS[kind] : "file";
  return `$(${name})`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** A non-negative integer, or undefined. */
function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function position(value: unknown): Position | undefined {
  if (!isObject(value)) {
    return undefined;
  }
  const line = count(value.line);
  const character = count(value.character);
  return line === undefined || character === undefined ? undefined : { line, character };
}

/** The server's range, unchanged, when it is well formed (start not after end). */
function serverRange(value: unknown): Range | undefined {
  if (!isObject(value)) {
    return undefined;
  }
  const start = position(value.start);
  const end = position(value.end);
  if (start === undefined || end === undefined) {
    return undefined;
  }
  const ordered =
    start.line < end.line || (start.line === end.line && start.character <= end.character);
  return ordered ? { start, end } : undefined;
}

/** 1-based inclusive line numbers, or undefined; 0 is not a valid 1-based line. */
function lineNumber(value: unknown): number | undefined {
  const n = count(value);
  return n === undefined || n === 0 ? undefined : n;
}

/** The last segment of a slash- or backslash-separated path, without decoding. */
function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter((part) => part.length > 0);
  return parts.length > 0 ? parts[parts.length - 1] : "";
}

/** A `file://` URI for an absolute path (POSIX or Windows style), percent-encoded. */
export function fileUri(absolutePath: string): string {
  const segments = absolutePath.replace(/\\/g, "/").split("/");
  const encoded = segments.map((segment, i) =>
    // Keep a Windows drive ("C:") readable; encode everything else per segment.
    i === 0 && /^[A-Za-z]:$/.test(segment) ? segment : encodeURIComponent(segment),
  );
  const path = encoded.join("/");
  return path.startsWith("/") ? `file://${path}` : `file:///${path}`;
}

function joinPath(root: string, relative: string): string {
  return root.endsWith("/") || root.endsWith("\\") ? root + relative : `${root}/${relative}`;
}

/** The URI to open: the server's `uri`, else `root` joined with `path`. */
function resultUri(result: Record<string, unknown>): string | undefined {
  const uri = str(result.uri);
  if (uri !== "") {
    return uri;
  }
  const root = str(result.root);
  const path = str(result.path);
  return root !== "" && path !== "" ? fileUri(joinPath(root, path)) : undefined;
}

/** The path shown to the user: `path`, else the last segment of the URI (decoded). */
function displayPath(result: Record<string, unknown>, uri: string): string {
  const path = str(result.path);
  if (path !== "") {
    return path;
  }
  const last = baseName(uri.replace(/[?#].*$/, ""));
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * Location data for a result, or undefined when there is nowhere to go.
 *
 * The server's `range` (0-based, UTF-16 characters, the unit VS Code uses) is passed
 * through untouched. Without a usable `range`, lines `start_line-1`..`end_line-1` are used.
 */
export function toLocation(result: unknown): LocationData | undefined {
  if (!isObject(result)) {
    return undefined;
  }
  const uri = resultUri(result);
  if (uri === undefined) {
    return undefined;
  }
  const range = serverRange(result.range);
  if (range !== undefined) {
    const selection = serverRange(result.selectionRange);
    const inside =
      selection !== undefined &&
      selection.start.line >= range.start.line &&
      selection.end.line <= range.end.line &&
      (selection.start.line !== range.start.line || selection.end.line !== range.end.line);
    return inside ? { uri, range, wholeLines: false, selection } : { uri, range, wholeLines: false };
  }
  const startLine = (lineNumber(result.start_line) ?? 1) - 1;
  const endLine = Math.max(startLine, (lineNumber(result.end_line) ?? startLine + 1) - 1);
  return {
    uri,
    range: { start: { line: startLine, character: 0 }, end: { line: endLine, character: 0 } },
    wholeLines: true,
  };
}

/** The first non-blank line of a snippet, trimmed, at most `max` characters (plus "…"). */
export function firstLine(snippet: unknown, max: number = DETAIL_MAX): string {
  const line = str(snippet)
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  if (line === undefined) {
    return "";
  }
  // Cap by code points so a surrogate pair is never cut in half.
  const chars = Array.from(line);
  return chars.length > max ? `${chars.slice(0, max).join("").trimEnd()}…` : line;
}

/** The score with two decimals, or "" when the server sent no number. */
export function formatScore(score: unknown): string {
  return typeof score === "number" && Number.isFinite(score) ? score.toFixed(2) : "";
}

/** Quick-pick data for one result, or undefined when the result has no location. */
export function toPickItem(result: unknown): PickItemData | undefined {
  const location = toLocation(result);
  if (location === undefined || !isObject(result)) {
    return undefined;
  }
  const path = displayPath(result, location.uri);
  const name = str(result.name).trim() || baseName(path) || path;
  const line = lineNumber(result.start_line) ?? location.range.start.line + 1;
  const snippet = firstLine(result.snippet);
  const score = formatScore(result.score);
  const matched =
    location.selection === undefined
      ? ""
      : `matched lines ${location.selection.start.line + 1}-${location.selection.end.line + 1}`;
  const weak = result.confident === false ? "weak match" : "";
  const detail = [snippet, score === "" ? "" : `score ${score}`, matched, weak]
    .filter((part) => part !== "")
    .join("  ·  ");
  return {
    label: `${kindIcon(result.kind)} ${name}`,
    description: `${path}:${line}`,
    detail,
    location,
  };
}

/** The message shown when a search finds nothing. */
export function noResultsMessage(query: string): string {
  const q = query.trim();
  return q === ""
    ? "Codesearch: no results."
    : `Codesearch: no results for "${q}". Try other words, or reindex the workspace.`;
}

/**
 * Turn a `codesearch/search` answer into quick-pick items (best first, order kept),
 * the notices to show, and a message when there is nothing to pick.
 */
export function toSearchView(answer: unknown, query: string): SearchView {
  const body = isObject(answer) ? answer : {};
  const notices = Array.isArray(body.notices)
    ? body.notices.filter((n): n is string => typeof n === "string" && n.trim() !== "")
    : [];
  const results = Array.isArray(body.results) ? body.results : [];
  const items: PickItemData[] = [];
  for (const result of results) {
    const item = toPickItem(result);
    if (item !== undefined) {
      items.push(item);
    }
  }
  const skipped = results.length - items.length;
  if (skipped > 0) {
    notices.push(
      `Codesearch: ${skipped} result${skipped === 1 ? "" : "s"} without a location ${
        skipped === 1 ? "was" : "were"
      } left out.`,
    );
  }
  const view: SearchView = { items, notices };
  if (items.length === 0) {
    // The words the user typed, else the server's echo of them.
    view.emptyMessage = noResultsMessage(query.trim() !== "" ? query : str(body.query));
  }
  return view;
}

/** Plain-text lines for the status output channel, from a `codesearch.status` answer. */
export function formatStatus(status: unknown): string[] {
  if (!isObject(status)) {
    return ["The server sent no status."];
  }
  const lines: string[] = [];
  const daemon = status.daemon;
  if (isObject(daemon)) {
    lines.push("Daemon: running");
    for (const [key, value] of Object.entries(daemon)) {
      lines.push(`  ${key}: ${scalar(value)}`);
    }
  } else {
    lines.push("Daemon: not running (searches run inside the language server)");
  }
  const repos = Array.isArray(status.repos) ? status.repos.filter(isObject) : [];
  if (repos.length === 0) {
    lines.push('Repositories: none indexed yet (run "Codesearch: Reindex Workspace")');
    return lines;
  }
  lines.push(`Repositories: ${repos.length}`);
  for (const repo of repos) {
    const root = str(repo.root) || "(unknown root)";
    const state = str(repo.state) || "unknown";
    const files = count(repo.files);
    const chunks = count(repo.chunks);
    const sizes = [
      files === undefined ? "" : `${files} files`,
      chunks === undefined ? "" : `${chunks} chunks`,
    ].filter((s) => s !== "");
    lines.push(`  ${root}: ${state}${sizes.length > 0 ? ` (${sizes.join(", ")})` : ""}`);
    for (const [key, value] of Object.entries(repo)) {
      if (!["root", "state", "files", "chunks"].includes(key)) {
        lines.push(`    ${key}: ${scalar(value)}`);
      }
    }
  }
  return lines;
}

function scalar(value: unknown): string {
  if (value === null || value === undefined) {
    return "-";
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** The message after `codesearch.reindex`, from its `{roots: string[]}` answer. */
export function reindexMessage(answer: unknown): string {
  const roots =
    isObject(answer) && Array.isArray(answer.roots)
      ? answer.roots.filter((r): r is string => typeof r === "string")
      : [];
  if (roots.length === 0) {
    return "Codesearch: nothing to reindex (no workspace folder is indexed).";
  }
  return roots.length === 1
    ? `Codesearch: reindexed ${roots[0]}.`
    : `Codesearch: reindexed ${roots.length} folders: ${roots.join(", ")}.`;
}

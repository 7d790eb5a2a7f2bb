/**
 * The VS Code glue: start `codesearch-lsp`, and three commands on top of it.
 *
 * Everything that turns server answers into what the user sees lives in `mapping.ts`
 * (pure, unit-tested); this file only calls VS Code and the language client.
 *
 * The server advertises `codesearch.search`, `codesearch.reindex` and `codesearch.status`
 * as executeCommand commands, which the language client registers as VS Code commands
 * under those very names; the extension's own commands therefore use other ids.
 */

import * as vscode from "vscode";
import {
  ErrorCodes,
  ExecuteCommandRequest,
  LanguageClient,
  LSPErrorCodes,
  type LanguageClientOptions,
  ResponseError,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";
import { describeCommand, resolveServerCommand, type ServerCommand } from "./config";
import {
  formatStatus,
  type LocationData,
  type PickItemData,
  reindexMessage,
  toSearchView,
} from "./mapping";

const SEARCH_REQUEST = "codesearch/search";

let log: vscode.LogOutputChannel | undefined;
let statusChannel: vscode.OutputChannel | undefined;
let clientPromise: Promise<LanguageClient | undefined> | undefined;
let lastQuery = "";

export function activate(context: vscode.ExtensionContext): void {
  log = vscode.window.createOutputChannel("Codesearch", { log: true });
  statusChannel = vscode.window.createOutputChannel("Codesearch Status");
  context.subscriptions.push(
    log,
    statusChannel,
    command("codesearch.semanticSearch", semanticSearch),
    command("codesearch.reindexWorkspace", reindexWorkspace),
    command("codesearch.showStatus", showStatus),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (
        event.affectsConfiguration("codesearch.serverPath") ||
        event.affectsConfiguration("codesearch.serverArgs")
      ) {
        void restartClient();
      }
    }),
  );
  void ensureClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}

/** Register a command whose failures end up as one clear error message. */
function command(id: string, run: () => Promise<void>): vscode.Disposable {
  return vscode.commands.registerCommand(id, async () => {
    try {
      await run();
    } catch (error) {
      if (!isCancellation(error)) {
        log?.error(`${id} failed: ${errorText(error)}`);
        void vscode.window.showErrorMessage(`Codesearch: ${errorText(error)}`);
      }
    }
  });
}

function serverCommand(): ServerCommand {
  const config = vscode.workspace.getConfiguration("codesearch");
  return resolveServerCommand(config.get("serverPath"), config.get("serverArgs"));
}

async function startClient(): Promise<LanguageClient | undefined> {
  const cmd = serverCommand();
  // No `transport`: plain stdio without the `--stdio` flag the client would otherwise add.
  const serverOptions: ServerOptions = { command: cmd.command, args: cmd.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }],
    outputChannel: log,
  };
  const client = new LanguageClient("codesearch", "Codesearch", serverOptions, clientOptions);
  log?.info(`Starting the language server: ${describeCommand(cmd)}`);
  try {
    await client.start();
    return client;
  } catch (error) {
    void client.dispose().catch(() => undefined);
    log?.error(`Could not start ${describeCommand(cmd)}: ${errorText(error)}`);
    void vscode.window
      .showErrorMessage(
        `Codesearch: could not start the language server "${describeCommand(cmd)}" ` +
          `(${errorText(error)}). Install codesearch so that codesearch-lsp is on PATH, ` +
          "or set codesearch.serverPath.",
        "Open Settings",
        "Show Log",
      )
      .then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "codesearch.server");
        } else if (choice === "Show Log") {
          log?.show();
        }
      });
    return undefined;
  }
}

/** The running client, started (or restarted after it stopped) on demand. */
async function ensureClient(): Promise<LanguageClient | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (clientPromise === undefined) {
      clientPromise = startClient();
    }
    const pending = clientPromise;
    const client = await pending;
    if (client !== undefined && client.state !== State.Stopped) {
      return client;
    }
    if (clientPromise === pending) {
      clientPromise = undefined; // the next call starts afresh (the user may have fixed PATH)
    }
    if (client === undefined) {
      return undefined; // startClient already told the user why
    }
    void client.dispose().catch(() => undefined); // it stopped (crashed): start once more
  }
  return undefined;
}

async function stopClient(): Promise<void> {
  const pending = clientPromise;
  clientPromise = undefined;
  const client = await pending;
  if (client !== undefined) {
    await client.dispose().catch((error: unknown) => log?.warn(errorText(error)));
  }
}

async function restartClient(): Promise<void> {
  await stopClient();
  await ensureClient();
}

async function semanticSearch(): Promise<void> {
  const clientReady = ensureClient(); // the server starts while the user types
  const query = await vscode.window.showInputBox({
    title: "Codesearch: Semantic Search",
    prompt: "Describe the code you are looking for, in plain words",
    placeHolder: "e.g. where do we retry failed HTTP requests?",
    value: initialQuery(),
    ignoreFocusOut: true,
  });
  if (query === undefined || query.trim() === "") {
    return;
  }
  lastQuery = query;
  const client = await clientReady;
  if (client === undefined) {
    return;
  }
  const k = vscode.workspace.getConfiguration("codesearch").get<number>("maxResults", 20);
  const answer = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `Codesearch: searching "${query.trim()}"…`,
      cancellable: true,
    },
    (_progress, token) => search(client, query, k, token),
  );
  if (answer === undefined) {
    return; // cancelled
  }
  const view = toSearchView(answer, query);
  for (const notice of view.notices) {
    void vscode.window.showInformationMessage(notice);
  }
  if (view.emptyMessage !== undefined) {
    void vscode.window.showInformationMessage(view.emptyMessage);
    return;
  }
  const items = view.items.map((data) => ({
    label: data.label,
    description: data.description,
    detail: data.detail,
    data,
  }));
  const picked = await vscode.window.showQuickPick<vscode.QuickPickItem & { data: PickItemData }>(
    items,
    {
      title: `Codesearch: ${query.trim()}`,
      placeHolder: "Pick a result to open (type to filter)",
      matchOnDescription: true,
      matchOnDetail: true,
    },
  );
  if (picked !== undefined) {
    await openLocation(picked.data.location);
  }
}

/** The selected text (one short line) if any, else the previous question. */
function initialQuery(): string {
  const editor = vscode.window.activeTextEditor;
  if (editor !== undefined && !editor.selection.isEmpty) {
    const text = editor.document.getText(editor.selection).trim();
    if (text !== "" && !text.includes("\n") && text.length <= 200) {
      return text;
    }
  }
  return lastQuery;
}

/** `codesearch/search`; a server without it gets the executeCommand form instead. */
async function search(
  client: LanguageClient,
  query: string,
  k: number,
  token: vscode.CancellationToken,
): Promise<unknown> {
  try {
    return await client.sendRequest(SEARCH_REQUEST, { query, k }, token);
  } catch (error) {
    if (token.isCancellationRequested) {
      return undefined;
    }
    if (!(error instanceof ResponseError && error.code === ErrorCodes.MethodNotFound)) {
      throw error;
    }
  }
  return client.sendRequest(
    ExecuteCommandRequest.type,
    { command: "codesearch.search", arguments: [query, { k }] },
    token,
  );
}

async function openLocation(location: LocationData): Promise<void> {
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(location.uri, true));
  const { start, end } = location.range;
  let range = new vscode.Range(start.line, start.character, end.line, end.character);
  if (location.wholeLines) {
    const last = Math.min(end.line, document.lineCount - 1);
    range = new vscode.Range(range.start, document.lineAt(last).range.end);
  }
  range = document.validateRange(range);
  const editor = await vscode.window.showTextDocument(document, { preview: true });
  if (location.selection !== undefined) {
    // A part of a long definition matched: the definition's first line in view, the
    // lines that matched selected (anchor at their end, cursor at their start).
    const s = location.selection;
    const matched = document.validateRange(
      new vscode.Range(s.start.line, s.start.character, s.end.line, s.end.character),
    );
    editor.revealRange(range, vscode.TextEditorRevealType.AtTop);
    editor.selection = new vscode.Selection(matched.end, matched.start);
    editor.revealRange(matched, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    return;
  }
  // Anchor at the end, cursor at the start: the selection covers the result and the
  // cursor sits on its first line, which stays in view even for a long function.
  editor.selection = new vscode.Selection(range.end, range.start);
  editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

async function reindexWorkspace(): Promise<void> {
  const client = await ensureClient();
  if (client === undefined) {
    return;
  }
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "Codesearch: reindexing…" },
    () =>
      client.sendRequest(ExecuteCommandRequest.type, {
        command: "codesearch.reindex",
        arguments: [],
      }),
  );
  void vscode.window.showInformationMessage(reindexMessage(answer));
}

async function showStatus(): Promise<void> {
  const client = await ensureClient();
  if (client === undefined) {
    return;
  }
  const status: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
    command: "codesearch.status",
    arguments: [],
  });
  const channel = statusChannel;
  if (channel === undefined) {
    return;
  }
  channel.clear();
  channel.appendLine(`Codesearch status, ${new Date().toLocaleString()}`);
  channel.appendLine(`Server: ${describeCommand(serverCommand())}`);
  for (const line of formatStatus(status)) {
    channel.appendLine(line);
  }
  channel.show(true);
}

function isCancellation(error: unknown): boolean {
  return (
    error instanceof vscode.CancellationError ||
    (error instanceof ResponseError && error.code === LSPErrorCodes.RequestCancelled)
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// The CnnDsl extension: starts `dsl lsp` (the path is the `cnndsl.dslPath` setting) for .cnn
// files; every feature (diagnostics, inlay shapes, hover, completion, navigation, formatting)
// comes from the server. Colouring is the TextMate grammar in syntaxes/.
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

let client: LanguageClient | undefined;

function dslPath(): string {
  return vscode.workspace.getConfiguration('cnndsl').get<string>('dslPath', 'dsl') || 'dsl';
}

async function start(): Promise<void> {
  // An executable without a transport speaks over its stdin and stdout, with no extra argument.
  const server: ServerOptions = { command: dslPath(), args: ['lsp'] };
  const options: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'cnn' },
      { scheme: 'untitled', language: 'cnn' },
    ],
  };
  client = new LanguageClient('cnndsl', 'CnnDsl (dsl lsp)', server, options);
  try {
    await client.start();
  } catch (e) {
    void vscode.window.showErrorMessage(
      `CnnDsl: could not start '${dslPath()} lsp' (${e}). Set "cnndsl.dslPath" to the dsl program, such as the dsl script of a CnnDsl checkout.`);
  }
}

async function stop(): Promise<void> {
  if (client) {
    const c = client;
    client = undefined;
    if (c.isRunning()) await c.stop();
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('cnndsl.dslPath')) {
        await stop();
        await start();
      }
    }));
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

#!/usr/bin/env bash
# What the editor tests need (tests/Lsp.Tests/EditorTests.fs). Idempotent.
#  - Neovim (Debian: neovim), whose built-in LSP client runs headless against `dsl lsp`;
#  - Node.js 20+ with npm, and editors/vscode's npm packages (TypeScript, vscode-languageclient,
#    @vscode/vsce, vscode-textmate, vscode-oniguruma), installed once with `npm ci` into
#    editors/vscode/node_modules (git-ignored) and reinstalled only when package-lock.json changes.
# Set CNNDSL_SKIP_APT=1 to skip the apt part.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
command -v nvim >/dev/null 2>&1 || missing+=(neovim)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ] && [ "${CNNDSL_SKIP_APT:-0}" != 1 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-editor: install ${missing[*]} yourself (not a Debian-like system)" >&2; exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup-editor: need root to install ${missing[*]}; run as root or install them yourself" >&2; exit 1
    fi
  fi
  echo "setup-editor: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "setup-editor: Node.js $(node --version 2>/dev/null || echo none) is too old: @vscode/vsce needs Node.js 20 or later" >&2
  exit 1
fi

ext="$root/editors/vscode"
if [ ! -f "$ext/node_modules/.package-lock.json" ] || [ "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]; then
  echo "setup-editor: npm ci in editors/vscode" >&2
  (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

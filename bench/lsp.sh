#!/usr/bin/env bash
# dsl lsp's latency per change on a 2,000-line model (issue 18's bar: diagnostics published within
# 50 ms at the 95th percentile): incremental and full-text didChange notifications, each timed
# from sending it to receiving the publishDiagnostics of its version. Builds dsl first.
# Usage: bench/lsp.sh [changes]   (default 300)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=/tmp/cnndsl-lsp-bench-bin
dotnet build src/Cli/Cli.fsproj -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly >&2
/usr/bin/python3 bench/lsp_bench.py "$out/dsl" "${1:-300}"

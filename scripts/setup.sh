#!/usr/bin/env bash
# Everything a fresh machine with the .NET SDK needs before building. Idempotent.
# The front end needs nothing beyond NuGet packages (restored by dotnet); native
# dependencies of the runtime (MKL, data sets) are installed here once they are used.
set -euo pipefail
if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET SDK (dotnet 10) is required: https://dotnet.microsoft.com/download" >&2
  exit 1
fi

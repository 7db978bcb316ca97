#!/usr/bin/env bash
# Runs the `dsl` program from a checkout: builds it on first use (and after a source
# change) into out/dsl, then passes every argument on.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$root/out/dsl"
if [ ! -f "$out/dsl.dll" ] || [ -n "$(find "$root/src" -type f \( -name '*.fs' -o -name '*.cs' -o -name '*.fsproj' -o -name '*.csproj' \) -newer "$out/dsl.dll" | head -1)" ]; then
  echo "dsl: building (first use or sources changed)..." >&2
  dotnet build "$root/src/Cli/Cli.fsproj" -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly >&2
fi
exec dotnet "$out/dsl.dll" "$@"

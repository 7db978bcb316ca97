#!/usr/bin/env bash
# Runs the `dsl` program from a checkout: on first use (and after a source change) it runs
# scripts/setup.sh and builds the program into out/dsl; then it passes every argument on.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$root/out/dsl"
if [ ! -f "$out/dsl.dll" ] || [ -n "$(find "$root/src" -type f \( -name '*.fs' -o -name '*.cs' -o -name '*.c' -o -name '*.py' -o -name '*.fsproj' -o -name '*.csproj' \) -newer "$out/dsl.dll" | head -1)" ]; then
  # First use (or changed sources): install what the runtime needs, then build.
  bash "$root/scripts/setup.sh" >&2
  echo "dsl: building (first use or sources changed)..." >&2
  dotnet build "$root/src/Cli/Cli.fsproj" -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly >&2
fi
exec dotnet "$out/dsl.dll" "$@"

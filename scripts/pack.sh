#!/usr/bin/env bash
# Builds every package of the repository in Release into out/packages (or --output DIR) and
# lists the files it wrote: the libraries CnnDsl.<Project> (with .snupkg symbol packages) and
# the `dsl` .NET tool CnnDsl.Tool. Install the tool from them with
#   dotnet tool install --global --add-source out/packages CnnDsl.Tool
# (README.md, "Install as a .NET tool").
#
#   scripts/pack.sh [--version V] [--output DIR] [-c CONFIGURATION] [--no-build] [more `dotnet pack` arguments]
#
# --version V  the packages' version (default: VersionPrefix in Directory.Build.props)
# --no-build   pack what the last Release build left (the packaging tests do this after
#              `dotnet test -c Release` has built it); the default builds first.
# The runtime's two native helpers (src/Runtime/native) need gcc; without it the packages are
# made without them and the runtime says so in its header.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="$root/out/packages"
configuration=Release
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --version) args+=("-p:Version=$2"); shift 2 ;;
    --output) output="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    -c|--configuration) configuration="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if ! command -v dotnet >/dev/null 2>&1; then
  echo "pack: the .NET SDK (dotnet 10) is required: https://dotnet.microsoft.com/download" >&2
  exit 1
fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "pack: gcc not found: the packages will lack the runtime's native helpers (apt-get install gcc)" >&2
fi
mkdir -p "$output"
# Old packages of ours in the folder (CnnDsl.*, the API package CnnDsl too) would be mistaken for this build's.
rm -f "$output"/CnnDsl.*.nupkg "$output"/CnnDsl.*.snupkg
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet pack "$root/CnnDsl.sln" -c "$configuration" --nologo -v quiet -o "$output" ${args[@]+"${args[@]}"} >&2
shopt -s nullglob
packages=("$output"/*.nupkg "$output"/*.snupkg)
if [ ${#packages[@]} -eq 0 ]; then echo "pack: no package was made" >&2; exit 1; fi
for p in "${packages[@]}"; do
  printf '%8s  %s\n' "$(du -h "$p" | cut -f1)" "$p"
done

#!/usr/bin/env bash
# Mutation testing of the numeric core with Stryker.NET (dotnet-stryker, a NuGet dotnet tool,
# installed on first use). Each source file runs on its own against only the tests that cover
# it (the rest of the suite filtered out), so that a file takes minutes on this 2-core machine.
# Not part of CI or test.sh (too slow): run before a release and record the score and the
# surviving mutants in docs/results.md.
#
#   scripts/mutation.sh                 every file listed below
#   scripts/mutation.sh src/Runtime/Losses.cs
#
# Score = killed / (killed + survived), timeouts counted as killed and mutants no test reaches
# counted as survived; reports (HTML, JSON) in runs/mutation/NAME/. Environment:
# CNNDSL_TOOLS (where the tool goes, default ~/.dotnet/cnndsl-tools), CNNDSL_MUTATION_CONCURRENCY
# (test processes at once, default 1: the machine is shared).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${CNNDSL_TOOLS:-$HOME/.dotnet/cnndsl-tools}"
stryker="$tools/dotnet-stryker"
if [ ! -x "$stryker" ]; then
  echo "mutation: installing dotnet-stryker into $tools" >&2
  dotnet tool install dotnet-stryker --tool-path "$tools" >&2
fi

# The source file (relative to the repository) and the test filter of the tests that cover it.
declare -A filters=(
  [src/Runtime/Losses.cs]="FullyQualifiedName~LossesTests"
  [src/Runtime/Training/Optimizers.cs]="FullyQualifiedName~OptimizersTests|FullyQualifiedName~CheckpointTests"
)
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(src/Runtime/Losses.cs src/Runtime/Training/Optimizers.cs)

status=0
for file in "${files[@]}"; do
  filter="${filters[$file]:-}"
  if [ -z "$filter" ]; then
    echo "mutation: no test filter for $file; add it to the list in scripts/mutation.sh (known: ${!filters[*]})" >&2
    exit 2
  fi
  name="$(basename "$file" .cs)"
  out="$root/runs/mutation/$name"
  rm -rf "$out"
  echo "mutation: $file against $filter" >&2
  (cd "$root/tests/Runtime.Tests" &&
    "$stryker" --project Runtime.csproj --test-project Runtime.Tests.fsproj --configuration Release \
      --mutate "**/${file#src/Runtime/}" --test-case-filter "$filter" \
      --concurrency "${CNNDSL_MUTATION_CONCURRENCY:-1}" --reporter Progress --reporter Json --reporter Html \
      --output "$out" --skip-version-check) || status=$?
  report="$out/reports/mutation-report.json"
  [ -f "$report" ] || { echo "mutation: no report for $file (see the output above)" >&2; status=1; continue; }
  /usr/bin/python3 - "$report" "$file" <<'PY'
import json, sys
report, wanted = json.load(open(sys.argv[1])), sys.argv[2]
counts, survivors = {}, []
for path, f in report["files"].items():
    source = f.get("source", "").splitlines()
    for m in f["mutants"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
        if m["status"] in ("Survived", "NoCoverage"):
            line = m["location"]["start"]["line"]
            survivors.append("  line %d, %s (%s): %s  ->  %s" % (
                line, m["mutatorName"], m["status"], source[line - 1].strip() if line <= len(source) else "",
                m.get("replacement", "").replace("\n", " ")))
killed = counts.get("Killed", 0) + counts.get("Timeout", 0)
alive = counts.get("Survived", 0) + counts.get("NoCoverage", 0)
score = 100.0 * killed / (killed + alive) if killed + alive else float("nan")
print("%s: score %.1f%% (killed %d, timeout %d, survived %d, no coverage %d; %s)" % (
    wanted, score, counts.get("Killed", 0), counts.get("Timeout", 0), counts.get("Survived", 0),
    counts.get("NoCoverage", 0), ", ".join("%s %d" % kv for kv in sorted(counts.items())
                                          if kv[0] not in ("Killed", "Timeout", "Survived", "NoCoverage")) or "nothing else"))
print("\n".join(survivors))
PY
done
exit $status

#!/usr/bin/env bash
# Mutation testing of the numeric core with Stryker.NET (dotnet-stryker, a NuGet dotnet tool,
# installed on first use). Each source file runs on its own against only the tests that cover
# it (the rest of the suite filtered out), so that a file takes minutes on this 2-core machine.
# Not part of CI or test.sh (too slow): run before a release and record the score and the
# surviving mutants in docs/results.md.
#
#   scripts/mutation.sh                 every file listed below, each in a run of its own
#   scripts/mutation.sh src/Runtime/Losses.cs
#   scripts/mutation.sh --together conv src/Runtime/Layers/Conv2d.cs src/Runtime/Layers/Im2Col.cs
#
# Score = killed / (killed + survived), timeouts counted as killed and mutants no test reaches
# counted as survived; reports (HTML, JSON) in runs/mutation/NAME/. Environment:
# CNNDSL_TOOLS (where the tool goes, default ~/.dotnet/cnndsl-tools), CNNDSL_MUTATION_CONCURRENCY
# (test processes at once, default 1: the machine is shared), CNNDSL_FSCHECK_MAXTEST (cases per
# property, default 25: see CasesAttribute in tests/Runtime.Tests/TestSupport.fs).
# One run at a time per working copy: Stryker rebuilds tests/Runtime.Tests/bin in place, and two
# runs sharing it report every mutant as Timeout or NoCoverage (run it in a clone of its own).
set -euo pipefail
export CNNDSL_FSCHECK_MAXTEST="${CNNDSL_FSCHECK_MAXTEST:-25}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${CNNDSL_TOOLS:-$HOME/.dotnet/cnndsl-tools}"
stryker="$tools/dotnet-stryker"
if [ ! -x "$stryker" ]; then
  echo "mutation: installing dotnet-stryker into $tools" >&2
  dotnet tool install dotnet-stryker --tool-path "$tools" >&2
fi

# The source file (relative to the repository) and the tests that cover it: the file's own test
# file, and the tests of the layers that call it. No filter is wider than it must be: Stryker first
# runs every filtered test with coverage recording, which is slow on the kernels' inner loops.
declare -A filters=(
  [src/Runtime/Losses.cs]="FullyQualifiedName~LossesTests"
  [src/Runtime/Layers/ActivationFunctions.cs]="FullyQualifiedName~ActivationFunctionsTests|FullyQualifiedName~LossesTests|FullyQualifiedName~GradientCheckTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/ActivationLayer.cs]="FullyQualifiedName~ActivationFunctionsTests|FullyQualifiedName~GradientCheckTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Add.cs]="FullyQualifiedName~AddTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/BatchNorm.cs]="FullyQualifiedName~BatchNormTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/ChannelPattern.cs]="FullyQualifiedName~BatchNormTests|FullyQualifiedName~DenseTests|FullyQualifiedName~Conv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/ColumnPlan.cs]="FullyQualifiedName~ColumnPlanTests|FullyQualifiedName~Conv2dTests|FullyQualifiedName~DirectConvTests|FullyQualifiedName~WinogradConvTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Concat.cs]="FullyQualifiedName~ConcatTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Conv2d.cs]="FullyQualifiedName~Conv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Dense.cs]="FullyQualifiedName~DenseTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/DirectConv.cs]="FullyQualifiedName~DirectConvTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Dropout.cs]="FullyQualifiedName~DropoutTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/GlobalPool2d.cs]="FullyQualifiedName~GlobalPool2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/GroupedConv2d.cs]="FullyQualifiedName~GroupedConv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Im2Col.cs]="FullyQualifiedName~Im2ColTests|FullyQualifiedName~Conv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Layer.cs]="FullyQualifiedName~GradientCheckTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Maxout.cs]="FullyQualifiedName~MaxoutTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/PaddedBatch.cs]="FullyQualifiedName~DirectConvTests|FullyQualifiedName~Conv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Pool2d.cs]="FullyQualifiedName~Pool2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Reshape.cs]="FullyQualifiedName~ReshapeTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/ShiftedGemm.cs]="FullyQualifiedName~Conv2dTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/Vectorised.cs]="FullyQualifiedName~ActivationFunctionsTests|FullyQualifiedName~AddTests|FullyQualifiedName~GlobalPool2dTests|FullyQualifiedName~Pool2dTests|FullyQualifiedName~ReshapeTests|FullyQualifiedName~Im2ColTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Layers/WinogradConv.cs]="FullyQualifiedName~WinogradConvTests|FullyQualifiedName~NetworkTests"
  [src/Runtime/Training/AtomicFile.cs]="FullyQualifiedName~AtomicFileTests|FullyQualifiedName~CheckpointTests"
  [src/Runtime/Training/Checkpoint.cs]="FullyQualifiedName~CheckpointTests|FullyQualifiedName~NormalizationTests|FullyQualifiedName~TrainerTests|FullyQualifiedName~WeightAverageTests"
  [src/Runtime/Training/Optimizers.cs]="FullyQualifiedName~OptimizersTests|FullyQualifiedName~CheckpointTests"
  [src/Runtime/Training/Schedules.cs]="FullyQualifiedName~SchedulesTests"
  [src/Runtime/Training/Trainer.cs]="FullyQualifiedName~TrainerTests|FullyQualifiedName~NormalizationTests|FullyQualifiedName~WeightAverageTests"
  [src/Runtime/Training/WeightAverage.cs]="FullyQualifiedName~WeightAverageTests|FullyQualifiedName~TrainerTests"
)
# --together NAME FILE...: the files in one run against the union of their filters (Stryker
# records coverage once per run, and that pass is the slow part for the convolution tests).
together=""
if [ "${1:-}" = "--together" ]; then together="$2"; shift 2; fi
files=("$@")
[ ${#files[@]} -eq 0 ] && mapfile -t files < <(printf "%s\n" "${!filters[@]}" | sort)
for file in "${files[@]}"; do
  if [ -z "${filters[$file]:-}" ]; then
    echo "mutation: no test filter for $file; add it to the list in scripts/mutation.sh (known: ${!filters[*]})" >&2
    exit 2
  fi
done

# run NAME FILE...: one Stryker run over the files; report in runs/mutation/NAME, then each
# file's score and surviving mutants (line:column, so that one statement of several is named).
run() {
  local name="$1"; shift
  local out="$root/runs/mutation/$name" mutate=() filter
  filter="$(for f in "$@"; do tr '|' '\n' <<<"${filters[$f]}"; done | sort -u | paste -sd'|')"
  for f in "$@"; do mutate+=(--mutate "**/${f#src/Runtime/}"); done
  rm -rf "$out"
  echo "mutation: $* against $filter" >&2
  (cd "$root/tests/Runtime.Tests" &&
    "$stryker" --project Runtime.csproj --test-project Runtime.Tests.fsproj --configuration Release \
      "${mutate[@]}" --test-case-filter "$filter" \
      --concurrency "${CNNDSL_MUTATION_CONCURRENCY:-1}" --reporter Progress --reporter Json --reporter Html \
      --output "$out" --skip-version-check) || status=$?
  local report="$out/reports/mutation-report.json"
  [ -f "$report" ] || { echo "mutation: no report for $name (see the output above)" >&2; status=1; return; }
  /usr/bin/python3 - "$report" "$@" <<'PY'
import json, sys
report, wanted = json.load(open(sys.argv[1])), sys.argv[2:]
for path, f in report["files"].items():
    if not any(path.endswith(w) for w in wanted):
        continue
    counts, survivors = {}, []
    source = f.get("source", "").splitlines()
    for m in f["mutants"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
        if m["status"] in ("Survived", "NoCoverage"):
            line, column = m["location"]["start"]["line"], m["location"]["start"]["column"]
            survivors.append("  %d:%d, %s (%s): %s  ->  %s" % (
                line, column, m["mutatorName"], m["status"], source[line - 1].strip() if line <= len(source) else "",
                m.get("replacement", "").replace("\n", " ")))
    killed = counts.get("Killed", 0) + counts.get("Timeout", 0)
    alive = counts.get("Survived", 0) + counts.get("NoCoverage", 0)
    score = 100.0 * killed / (killed + alive) if killed + alive else float("nan")
    print("%s: score %.1f%% (killed %d, timeout %d, survived %d, no coverage %d)" % (
        path.split("/src/")[-1], score, counts.get("Killed", 0), counts.get("Timeout", 0),
        counts.get("Survived", 0), counts.get("NoCoverage", 0)))
    print("\n".join(survivors))
PY
}

status=0
if [ -n "$together" ]; then run "$together" "${files[@]}"
else for file in "${files[@]}"; do run "$(basename "$file" .cs)" "$file"; done
fi

# The totals over each file's newest report in runs/mutation (a file may have a run of its own
# and a run together with others): the issue's bar is the score of src/Runtime/Layers,
# src/Runtime/Training and src/Runtime/Losses.cs together.
/usr/bin/python3 - "$root/runs/mutation" <<'PY'
import glob, json, os, sys
latest = {}
for report in sorted(glob.glob(os.path.join(sys.argv[1], "*", "reports", "mutation-report.json")), key=os.path.getmtime):
    for path, f in json.load(open(report))["files"].items():
        if any(m["status"] in ("Killed", "Timeout", "Survived", "NoCoverage") for m in f["mutants"]):
            latest[path.split("/src/")[-1]] = f
k = a = 0
for path, f in sorted(latest.items()):
    statuses = [m["status"] for m in f["mutants"]]
    killed = sum(s in ("Killed", "Timeout") for s in statuses)
    alive = sum(s in ("Survived", "NoCoverage") for s in statuses)
    k += killed; a += alive
    print("%-45s %5.1f%%  killed %4d  alive %3d" % (path, 100.0 * killed / (killed + alive), killed, alive))
if k + a:
    print("%-45s %5.1f%%  killed %4d  alive %3d" % ("all files run", 100.0 * k / (k + a), k, a))
PY
exit $status

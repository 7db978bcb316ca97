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
  [src/Runtime/Layers/ColumnPlan.cs]="FullyQualifiedName~Conv2dTests|FullyQualifiedName~DirectConvTests|FullyQualifiedName~WinogradConvTests|FullyQualifiedName~NetworkTests"
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
  [src/Runtime/Training/AtomicFile.cs]="FullyQualifiedName~AtomicFileTests"
  [src/Runtime/Training/Checkpoint.cs]="FullyQualifiedName~CheckpointTests"
  [src/Runtime/Training/Optimizers.cs]="FullyQualifiedName~OptimizersTests|FullyQualifiedName~CheckpointTests"
  [src/Runtime/Training/Schedules.cs]="FullyQualifiedName~SchedulesTests"
  [src/Runtime/Training/Trainer.cs]="FullyQualifiedName~TrainerTests"
  [src/Runtime/Training/WeightAverage.cs]="FullyQualifiedName~WeightAverageTests"
)
files=("$@")
[ ${#files[@]} -eq 0 ] && mapfile -t files < <(printf "%s\n" "${!filters[@]}" | sort)

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

# The totals over every report in runs/mutation (each file's latest run): the issue's bar is the
# score of src/Runtime/Layers, src/Runtime/Training and src/Runtime/Losses.cs together.
/usr/bin/python3 - "$root/runs/mutation" <<'PY'
import glob, json, os, sys
total = {"killed": 0, "alive": 0}
for report in sorted(glob.glob(os.path.join(sys.argv[1], "*", "reports", "mutation-report.json"))):
    for path, f in json.load(open(report))["files"].items():
        statuses = [m["status"] for m in f["mutants"]]
        killed = sum(s in ("Killed", "Timeout") for s in statuses)
        alive = sum(s in ("Survived", "NoCoverage") for s in statuses)
        if killed + alive == 0:
            continue
        total["killed"] += killed; total["alive"] += alive
        print("%-45s %5.1f%%  killed %4d  alive %3d" % (path.split("/src/")[-1], 100.0 * killed / (killed + alive), killed, alive))
k, a = total["killed"], total["alive"]
if k + a:
    print("%-45s %5.1f%%  killed %4d  alive %3d" % ("all files run", 100.0 * k / (k + a), k, a))
PY
exit $status

#!/usr/bin/env bash
# The test command: restores, builds and runs every test project, then prints one line
# "N passed, N failed" summed over all of them. Exits non-zero when any test fails.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
bash scripts/setup.sh || exit 1
bash scripts/setup-editor.sh || exit 1
results="$root/TestResults"
rm -rf "$results"
dotnet test CnnDsl.sln -c Release --nologo --logger "trx" --results-directory "$results"
status=$?
passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: dotnet test failed before running every test (see above)" >&2
fi
exit $status

#!/usr/bin/env bash
# Managed allocations of the product's training step in steady state: each model at batch 32 and
# 128, after 60 warm-up batches, for 3 s; prints the bytes allocated over all timed batches, on
# the stepping thread and in the whole process (issue 6's bar: zero).
# Usage: bench/allocations.sh [models...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(lenet fashion-mnist strided cifar10-bn)
cd "$root"
bash scripts/setup.sh
out=/tmp/cnndsl-bench-bin
dotnet build bench/Bench.csproj -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly
for model in "${models[@]}"; do
  for batch in 32 128; do
    MKL_NUM_THREADS=2 dotnet "$out/cnndsl-bench.dll" train --model "models/$model.cnn" --batch "$batch" --warmup 60 --seconds 3 |
      grep '^RESULT' | grep -o 'model=[^ ]*\| batch=[^ ]*\|batches=[^ ]*\|alloc_bytes_total=[^ ]*\|process_alloc_bytes_per_batch=[^ ]*' | tr '\n' ' '
    echo
  done
done

#!/usr/bin/env bash
# How the runtime's threads are chosen, by measurement: training images/s of CnnDsl's own step
# (bench/Program.cs `train`) under each threading choice, same models, batches and seconds.
#   - MKL's threading layer: Intel OpenMP (the default), GNU OpenMP, or sequential MKL;
#   - im2col/col2im/pooling kept on one thread (default) or split over two (CNNDSL_LAYER_THREADS=2);
#   - Intel OpenMP's spin time after a GEMM (KMP_BLOCKTIME, default 200 ms) against 0.
# Usage: bench/threading.sh [seconds-per-measurement (default 4)]   (about 6 minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-4}"
cd "$root"
bash scripts/setup.sh
out=/tmp/cnndsl-bench-bin
dotnet build bench/Bench.csproj -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly
variants=("default" "CNNDSL_LAYER_THREADS=2" "CNNDSL_LAYER_THREADS=2 KMP_BLOCKTIME=0" "KMP_BLOCKTIME=0" "MKL_THREADING_LAYER=GNU" "MKL_THREADING_LAYER=SEQUENTIAL")
for model in lenet fashion-mnist cifar10-bn; do
  for batch in 32 128; do
    for v in "${variants[@]}"; do
      settings=(); [ "$v" != default ] && read -ra settings <<<"$v"
      line=$(env "${settings[@]}" dotnet "$out/cnndsl-bench.dll" train --model "models/$model.cnn" --batch "$batch" --seconds "$seconds" --warmup 3 | grep '^RESULT')
      printf "%-14s batch %-4s %-32s %s\n" "$model" "$batch" "$v" "$(grep -o 'img_per_s=[0-9]*' <<<"$line")"
    done
  done
done

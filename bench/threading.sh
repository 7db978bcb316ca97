#!/usr/bin/env bash
# How the runtime's threads are chosen, by measurement: training images/s of CnnDsl's own step
# (bench/Program.cs `train`) under each threading choice, same models, batches and seconds.
#   - MKL's threading layer: Intel OpenMP (the default), GNU OpenMP, or sequential MKL;
#   - the work between GEMMs (im2col/col2im, pooling, Winograd and FFT transforms) split over one
#     thread per core (the default since session 9) or kept on one (CNNDSL_LAYER_THREADS=1);
#   - Intel OpenMP's spin time after a GEMM (KMP_BLOCKTIME, default 200 ms) against 0.
# With --load, one busy process per core runs throughout (another program sharing the machine),
# to see which choices hold up under load.
# Usage: bench/threading.sh [seconds-per-measurement (default 4)] [--load] [models...]
#   (about 6 minutes on 2 cores for the three default models)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-4}"; shift || true
load=0; if [ "${1:-}" = --load ]; then load=1; shift; fi
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(lenet fashion-mnist cifar10-bn)
cd "$root"
bash scripts/setup.sh
out=/tmp/cnndsl-bench-bin
dotnet build bench/Bench.csproj -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly
busy=()
stop_load() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_load EXIT
if [ $load = 1 ]; then
  for _ in $(seq "$(nproc)"); do sh -c 'while :; do :; done' & busy+=($!); done
  echo "# load: ${#busy[@]} busy processes"
fi
variants=("default" "CNNDSL_LAYER_THREADS=1" "KMP_BLOCKTIME=0" "CNNDSL_LAYER_THREADS=1 KMP_BLOCKTIME=0" "MKL_THREADING_LAYER=GNU" "MKL_THREADING_LAYER=SEQUENTIAL")
for model in "${models[@]}"; do
  for batch in 32 128; do
    for v in "${variants[@]}"; do
      settings=(); [ "$v" != default ] && read -ra settings <<<"$v"
      line=$(env "${settings[@]}" dotnet "$out/cnndsl-bench.dll" train --model "models/$model.cnn" --batch "$batch" --seconds "$seconds" --warmup 3 | grep '^RESULT')
      printf "%-14s batch %-4s %-32s %s\n" "$model" "$batch" "$v" "$(grep -o 'img_per_s=[0-9]*' <<<"$line")"
    done
  done
done

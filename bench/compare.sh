#!/usr/bin/env bash
# CnnDsl against libtorch (TorchSharp-cpu), side by side on this machine, in one run:
# the same .cnn models (translated from the validated graph for libtorch), the same batches
# of the model's data set, Adam, batch 32 and 128, 2 and 1 threads, then inference at batch
# 256. Each measurement is its own process (the two engines bring different MKL and OpenMP
# builds); the engines alternate, and swap who goes first at every measurement, so that
# drift of the machine falls on both. About 8 minutes on 2 cores.
# Usage: bench/compare.sh [seconds-per-measurement (default 4)] [models...]
# Raw lines go to bench/results/compare-<time>.log; the table is printed at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-4}"; shift || true
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(lenet fashion-mnist strided cifar10-bn)
cd "$root"
bash scripts/setup.sh
ours=/tmp/cnndsl-bench-bin; theirs=/tmp/cnndsl-torch-bin
dotnet build bench/Bench.csproj -c Release -o "$ours" --nologo -v quiet -clp:ErrorsOnly
dotnet build bench/Torch/Torch.csproj -c Release -o "$theirs" --nologo -v quiet -clp:ErrorsOnly
# TorchSharp 0.107's native library asks for GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks
# though nothing calls it; mark that one version need weak, in the build output's copy only.
python3 bench/Torch/fix_glibcxx.py "$theirs/runtimes/linux-x64/native/libLibTorchSharp.so" >/dev/null
mkdir -p bench/results
log="bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).log"
{ echo "# $(date -u +%FT%TZ); $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(nproc) cores; $seconds s per measurement"; } | tee "$log"

flip=0
pair() {  # pair MODE MODEL BATCH THREADS WARMUP
  local ours_cmd=(env MKL_NUM_THREADS="$4" DOTNET_PROCESSOR_COUNT="$4" dotnet "$ours/cnndsl-bench.dll" "$1" --model "models/$2.cnn" --batch "$3" --warmup "$5" --seconds "$seconds")
  local theirs_cmd=(env OMP_NUM_THREADS="$4" MKL_NUM_THREADS="$4" dotnet "$theirs/torch-bench.dll" "$1" --model "models/$2.cnn" --batch "$3" --threads "$4" --warmup "$5" --seconds "$seconds")
  if [ $flip = 0 ]; then "${ours_cmd[@]}"; "${theirs_cmd[@]}"; flip=1; else "${theirs_cmd[@]}"; "${ours_cmd[@]}"; flip=0; fi
}
for threads in 2 1; do
  for model in "${models[@]}"; do
    for batch in 32 128; do pair train "$model" $batch $threads 3 2>&1 | grep -v '^# cores' | tee -a "$log"; done
    pair infer "$model" 256 $threads 2 2>&1 | grep -v '^# cores' | tee -a "$log"
  done
done

echo
echo "== CnnDsl vs libtorch, images/s (ratio = CnnDsl / libtorch); peak resident MB (data set's share in brackets); log: $log"
grep '^RESULT' "$log" | awk '
{ delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  key = f["kind"] " " f["model"] " " f["threads"] " " f["batch"]
  if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
  ips[key, f["engine"]] = f["img_per_s"]; rss[key, f["engine"]] = f["peak_rss_mb"] " (" f["data_rss_mb"] ")"
  if (f["engine"] == "cnndsl") alloc[key] = f["alloc_bytes_per_batch"] }
END {
  printf "%-6s %-14s %7s %5s %10s %10s %6s %14s %14s %10s\n", "kind", "model", "threads", "batch", "cnndsl", "libtorch", "ratio", "cnndsl MB", "libtorch MB", "alloc B/batch"
  for (i = 1; i <= n; i++) { k = keys[i]; split(k, p, " ")
    a = ips[k, "cnndsl"]; b = ips[k, "libtorch"]
    printf "%-6s %-14s %7s %5s %10s %10s %6.2f %14s %14s %10s\n", p[1], p[2], p[3], p[4], a, b, (b > 0 ? a / b : 0), rss[k, "cnndsl"], rss[k, "libtorch"], alloc[k] } }' | tee -a "$log"

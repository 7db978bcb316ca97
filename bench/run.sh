#!/usr/bin/env bash
# Runs the benchmarks (GEMM per backend, per-layer forward+backward at the seed models'
# sizes, denormal inputs), with and without MKL's cpu shim. About 3 minutes on 2 cores.
# Usage: bench/run.sh [seconds-per-measurement (default 0.5)]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-0.5}"
cd "$root"
bash "$root/scripts/setup.sh"
out=/tmp/cnndsl-bench-bin
dotnet build "$root/bench/Bench.csproj" -c Release -o "$out" --nologo -v quiet -clp:ErrorsOnly
echo "## MKL with the cpu shim (default)"
CNNDSL_GEMM=mkl dotnet "$out/cnndsl-bench.dll" all --seconds "$seconds"
echo "## managed GEMM, in its own process (MKL's OpenMP threads would compete with it)"
CNNDSL_GEMM=managed dotnet "$out/cnndsl-bench.dll" gemm --seconds "$seconds"
CNNDSL_GEMM=managed dotnet "$out/cnndsl-bench.dll" layers --seconds "$seconds"
echo "## MKL without the cpu shim (CNNDSL_MKL_CPU_SHIM=0)"
CNNDSL_MKL_CPU_SHIM=0 dotnet "$out/cnndsl-bench.dll" gemm --seconds "$seconds"
echo "## denormals kept (CNNDSL_DENORMALS=keep)"
CNNDSL_DENORMALS=keep dotnet "$out/cnndsl-bench.dll" denormals --seconds "$seconds"

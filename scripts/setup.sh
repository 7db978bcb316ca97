#!/usr/bin/env bash
# Everything a fresh machine with the .NET SDK needs before building. Idempotent.
#  - Intel MKL (Debian non-free: libmkl-rt) with an OpenMP runtime (libomp-dev provides
#    libiomp5.so; without it MKL fails with "undefined symbol: omp_get_num_procs");
#  - gcc, to build the MKL cpu shim (src/Runtime/native/mkl_cpu.c);
#  - Fashion-MNIST (Debian: dataset-fashion-mnist, in /usr/share/datasets/fashion-mnist);
#  - the DejaVu fonts that the pictures (dsl run --plot, dsl show) write their text in;
#  - PyTorch (python3-torch) for /usr/bin/python3: the runtime's tests compare optimizer
#    trajectories and losses against it (tests/Runtime.Tests/oracles) and fail without it.
# The non-free component is enabled by editing the machine's own apt source, never by
# adding a mirror address. Set CNNDSL_SKIP_APT=1 to skip this part (the runtime then
# falls back to its managed GEMM and says so).
set -euo pipefail
if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET SDK (dotnet 10) is required: https://dotnet.microsoft.com/download" >&2
  exit 1
fi
[ "${CNNDSL_SKIP_APT:-0}" = 1 ] && exit 0

packages=(libmkl-rt libomp-dev gcc dataset-fashion-mnist fonts-dejavu-core python3-torch)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: not a Debian-like system; install MKL (libmkl_rt.so) and an OpenMP runtime yourself," >&2
  echo "       or set MKLROOT. The runtime falls back to its managed GEMM without them." >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup: need root to install ${missing[*]}; run as root or install them yourself" >&2; exit 1
  fi
fi
echo "setup: installing ${missing[*]}" >&2
# Enable Debian's non-free component in the existing source (deb822 or one-line format).
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  [ -f "$f" ] || continue
  if [[ "$f" == *.sources ]]; then
    $sudo sed -i -E '/^Components:/{/non-free([^-]|$)/! s/$/ non-free/}' "$f"
  else
    $sudo sed -i -E '/^deb .*debian/{/ non-free( |$)/! s/$/ non-free/}' "$f"
  fi
done
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2

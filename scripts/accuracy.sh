#!/usr/bin/env bash
# The long accuracy runs (not tests): each trains a model from models/ with its own train
# section and prints its epochs and test accuracy. Logs go to runs/accuracy/<model>.log.
# Usage: scripts/accuracy.sh [model ...]   (default: lenet fashion-mnist mnist-handworked)
# MNIST and CIFAR-10 are looked for through CNNDSL_DATA (default: ../shared/datasets).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CNNDSL_DATA="${CNNDSL_DATA:-$root/../shared/datasets}"
mkdir -p runs/accuracy
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(lenet fashion-mnist mnist-handworked)
for m in "${models[@]}"; do
  echo "== $m ($(date -u +%H:%M:%S))"
  ./dsl run "models/$m.cnn" --force --out "runs/accuracy/$m" 2>&1 | tee "runs/accuracy/$m.log" | grep -E "^(Epoch|Test|Data|Training|Engine)"
done

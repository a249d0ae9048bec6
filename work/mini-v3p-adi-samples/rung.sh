#!/usr/bin/env bash
# One pre-registered rung (docs/mini-v3-preregistration.md): rung.sh NAME TUNE_STEPS TUNE_LR TUNE_PARAMS
set -u
cd /work/main
export OMP_NUM_THREADS=1 ACTIONBENCH_NO_PROGRESS=1
D=work/mini-v3p-adi-samples
echo "== $1 start $(date -u +%H:%M:%S)"
/usr/bin/time -f "$1 cpu %U+%S s wall %e s" .venv/bin/actionbench mini adi-samples --suite mini-v3p \
  --set action_different.tune_steps=$2 --set action_different.tune_lr=$3 --set action_different.tune_params=$4 \
  --out $D/$1.json
exec .venv/bin/python work/mini-v3p-adi-samples/passes.py $1

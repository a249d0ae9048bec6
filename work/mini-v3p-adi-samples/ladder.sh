#!/usr/bin/env bash
# The pre-registered rungs (docs/mini-v3-preregistration.md), in order; stops at the first that passes.
set -u
cd /work/main
export OMP_NUM_THREADS=1 ACTIONBENCH_NO_PROGRESS=1
D=work/mini-v3p-adi-samples
run() {  # name steps lr params
  echo "== $1 start $(date -u +%H:%M:%S)"
  /usr/bin/time -f "$1 cpu %U+%S s wall %e s" .venv/bin/actionbench mini adi-samples --suite mini-v3p \
    --set action_different.tune_steps=$2 --set action_different.tune_lr=$3 --set action_different.tune_params=$4 \
    --out $D/$1.json
  .venv/bin/python -c "
import json,sys; g=json.load(open('$D/$1.json'))['sources']['generated']
ok = g['context_kept'] >= 0.5 and g['pose_changed'] >= 0.8
print('$1', 'PASSES' if ok else 'fails', {k: round(g[k], 4) for k in ('context_kept','pose_changed','person_kept','as_assumed')})
sys.exit(0 if ok else 1)" && { echo "taken: $1"; exit 0; }
}
run R0 175 1e-5 attention
run R1 175 1e-4 attention
run R2 175 1e-3 attention
run R3 175 1e-4 full
run R4 500 1e-3 attention
echo "no rung passes"

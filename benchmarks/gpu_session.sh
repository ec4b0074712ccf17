#!/usr/bin/env bash
# The GPU benchmarks of benchmarks/README.md, in one run on one GPU (about 7 minutes on an H200).
#
#   OUT=benchmarks/results bash benchmarks/gpu_session.sh            # from the repository root
#
# Needs PyTorch with CUDA and diffusers; lamo is taken from src/. Each step has its own time limit and
# writes its results file as soon as it ends, so a step that fails or runs out of memory costs only
# itself. Steps, most important first:
#   1. one guided step at CogVideoX-2B size: MPG (prior fp32/bf16 × pairs in one call/split) vs one CFG
#      transformer step, timed with 5 repeats (bench_guidance_step.py);
#   2. whole videos at CogVideoX-2B size, 49×480×720, 50 steps, CFG, bf16: baseline, MPG at the default
#      activation budget (2 GiB: one prior call) and at 0.5 GiB (four calls), FlowMo-style;
#   3. the same at Wan 2.1 1.3B size, 81×480×832, with 20 steps (time per video scales with steps);
#   4. the same at CogVideoX-5B size with 10 steps.
# A dry run of the same steps on tiny architectures on the CPU (seconds):
#   DRY=1 OUT=/tmp/dry bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:?set OUT to the folder for results}
PY=${PYTHON:-python3}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
LOG="$OUT/gpu_session.log"
if [ -n "${DRY:-}" ]; then
  DEV=cpu; A2B=tiny; AWAN=wan-tiny; A5B=tiny; PRIOR="--prior-preset tiny"; STEPS2B=4; STEPSWAN=4; STEPS5B=4; N5B=tiny-again
else
  DEV=cuda; A2B=cogvideox-2b; AWAN=wan-1.3b; A5B=cogvideox-5b; PRIOR=""; STEPS2B=50; STEPSWAN=20; STEPS5B=10; N5B=$A5B
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$LOG"
fi
$PY -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" | tee -a "$LOG"

step() {  # step NAME LIMIT_SECONDS ARGS...
  local name=$1 limit=$2; shift 2
  echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" | tee -a "$LOG"
  timeout "$limit" $PY "$@" 2>&1 | grep -v "should be kept in float32" | tee -a "$LOG"
  echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$LOG"
}

step guidance_step 150 benchmarks/bench_guidance_step.py --arch $A2B --device $DEV --time-backbone --repeats 5 \
  $PRIOR --out "$OUT/guidance_step_${A2B}_cuda.json"
step sampling_2b 300 benchmarks/bench_sampling.py --arch $A2B --device $DEV --dtype bfloat16 --repeats 1 \
  --steps $STEPS2B --activation-gib 2 0.5 $PRIOR --out "$OUT/sampling_${A2B}_cuda.json"
step sampling_wan 200 benchmarks/bench_sampling.py --arch $AWAN --device $DEV --dtype bfloat16 --repeats 1 \
  --steps $STEPSWAN $PRIOR --out "$OUT/sampling_${AWAN}_cuda.json"
step sampling_5b 200 benchmarks/bench_sampling.py --arch $A5B --device $DEV --dtype bfloat16 --repeats 1 \
  --steps $STEPS5B $PRIOR --out "$OUT/sampling_${N5B}_cuda.json"
echo "== done $(date -u +%H:%M:%S)" | tee -a "$LOG"

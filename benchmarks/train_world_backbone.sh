#!/usr/bin/env bash
# Train the shipped demo backbone (preset `world`: learned conv autoencoder + toy CogVideoX) and its two
# fine-tunes on one GPU, in one call of about 10 minutes (H200: ~17 backbone steps/s at batch 256).
#
#   OUT=runs/world-gpu bash benchmarks/train_world_backbone.sh        # from the repository root
#
# Steps: (1) the backbone from scratch on 80 000 clips of the `tiny` world simulated in memory — the
# autoencoder first (3000 steps), then the transformer + text encoder on a 16 000-step schedule (batch
# 256, bf16 autocast) stopped at STOP_AT (default 6000, the shipped weights; STOP_AT=0 runs the whole
# schedule, ~16 min: re-run the same command on the same machine and it resumes from its newest
# checkpoint), exporting the EMA pipeline at steps 1000 and 4000 too (backbones of graded quality);
# (2) the plain and the Motion-Drift-Loss fine-tunes from it (same steps, data and seed; only the
# drift term differs), if time is left (else run them on a CPU with README's commands). If the
# backbone runs past its time limit, its newest checkpoint is exported instead.
# CONTINUE=1 / CONTINUE=2: instead of step (1), the two continuations that made the shipped backbone (16 000
# steps in all), each one call well inside the 10-minute limit that needs nothing carried but the wheels and a
# fresh AdamW (the first run's optimiser state was not kept):
#   CONTINUE=1  6000 steps from INIT (default: step (1)'s pipeline, $RUN/backbone/pipeline; the step-6000 weights
#               shipped until 2026-11-28: `git show 02baa69:src/lamo/assets/demo-backbone`), learning rate 4.5e-4
#               (where the 16 000-step schedule stood at step 6000) decaying to 4.5e-5, EMA exported at 2000 and
#               4000 (backbones of graded quality); ~5 min of training at 19 steps/s on an H200
#   CONTINUE=2  4000 steps from INIT (default: CONTINUE=1's pipeline), 1.5e-4 decaying to 1.5e-5, seed 2, EMA
#               exported at 2000; ~3.5 min. Its EMA is the shipped backbone.
# then the fine-tunes from it as above.
# A dry run on the CPU with tiny sizes (a minute): DRY=1 OUT=/tmp/dry bash benchmarks/train_world_backbone.sh
# (DRY=1 CONTINUE=1 for the continuation). NOFT=1 trains the backbone only, with all the time (the fine-tunes then
# run on a CPU with README's commands, ~13 min each on one core).
set -u
OUT=${OUT:?set OUT to the folder for the packed results}
PY=${PYTHON:-python3}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
LOG="$OUT/train.log"
START=$(date +%s)
BUDGET=${BUDGET:-580}  # seconds for the whole script
RUN=${RUN:-runs/world-gpu}
if [ -n "${DRY:-}" ]; then
  BB="--preset world --data world:tiny:64:1 --steps 20 --batch-size 4 --save-every 10 --ae-steps 5 --ae-batch-size 4 --export-steps 5,10 --device cpu --workers 2"
  CONT="--preset world --data world:tiny:64:1 --steps 10 --batch-size 4 --save-every 5 --export-steps 5 --device cpu --workers 2"
  CONT2="$CONT --seed 2"
  FTDATA="world:tiny:32:1"; FTSTEPS=4; BUDGET=${BUDGET_DRY:-300}
else
  WORLD="--preset world --data world:tiny:80000:1 --batch-size 256 --precision bf16 --workers 16"  # every stage
  BB="$WORLD --steps 16000 --stop-at ${STOP_AT:-6000} --lr 6e-4 --warmup 500 --save-every 1000 --ae-steps 3000 --ae-batch-size 64 --export-steps 1000,4000"
  CONT="$WORLD --steps 6000 --lr 4.5e-4 --warmup 200 --save-every 1000 --export-steps 2000,4000 --seed 1"
  CONT2="$WORLD --steps 4000 --lr 1.5e-4 --warmup 100 --save-every 500 --export-steps 2000 --seed 2"
  FTDATA="world:tiny:8000:1"; FTSTEPS=800
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOG"
fi
$PY -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" | tee -a "$LOG"
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

if [ -n "${CONTINUE:-}" ]; then
  case "$CONTINUE" in
    1) BB="$CONT --init-from ${INIT:-$RUN/backbone/pipeline}"; RUN=${RUN}-continued ;;
    2) BB="$CONT2 --init-from ${INIT:-$RUN-continued/backbone/pipeline}"; RUN=${RUN}-continued-2 ;;
    *) echo "CONTINUE is 1 or 2, got $CONTINUE" >&2; exit 2 ;;
  esac
fi
echo "== backbone $(date -u +%T): $BB" | tee -a "$LOG"
RESERVE=150; [ -n "${NOFT:-}" ] && RESERVE=40  # NOFT=1: the backbone only (fine-tunes on a CPU, README's commands)
timeout $(( $(left) - RESERVE )) $PY -m lamo demo train-backbone $BB --out $RUN/backbone 2>&1 | tr '\r' '\n' | grep -v "^backbone:\|^autoencoder:\|^simulating" | tee -a "$LOG"
if [ ! -f $RUN/backbone/pipeline/model_index.json ]; then
  echo "== backbone ran out of time: exporting its newest checkpoint" | tee -a "$LOG"
  $PY -c "from lamo.demo.train_backbone import export_checkpoint as e; print(e('$RUN/backbone', '$RUN/backbone/pipeline'))" 2>&1 | tee -a "$LOG"
fi
grep -h "" $RUN/backbone/loss.jsonl | tail -3 | tee -a "$LOG"

FT="--data $FTDATA --init-from $RUN/backbone/pipeline --train-text-encoder no --steps $FTSTEPS --lr 1e-4 --warmup 80 --save-every 400 --seed 5 --batch-size 16"
[ -n "${DRY:-}" ] && FT="$FT --device cpu --workers 2"
FTS=("plain --drift-weight 0.0" "mdl --drift-weight 45 --drift-mode dense_batch_normalized --drift-tau 1")
[ -n "${NOFT:-}" ] && FTS=()
for ft in "${FTS[@]}"; do
  set -- $ft; name=$1; shift
  echo "== fine-tune $name $(date -u +%T), $(left) s left" | tee -a "$LOG"
  timeout $(( $(left) / 2 - 10 )) $PY -m lamo demo train-backbone $FT "$@" --out $RUN/ft-$name 2>&1 | tr '\r' '\n' | grep -v "^backbone:\|^simulating" | tail -5 | tee -a "$LOG"
done

echo "== packing $(date -u +%T)" | tee -a "$LOG"
for d in pipeline pipeline-step-1000 pipeline-step-2000 pipeline-step-4000 pipeline-step-5 pipeline-step-10; do
  [ -d $RUN/backbone/$d ] && tar -cf "$OUT/backbone-$d.tar" -C $RUN/backbone $d
done
tar -cf "$OUT/logs.tar" -C $RUN backbone/loss.jsonl backbone/autoencoder_loss.jsonl backbone/vocabulary.json 2>/dev/null
for n in plain mdl; do [ -d $RUN/ft-$n/pipeline ] && tar -cf "$OUT/ft-$n.tar" -C $RUN/ft-$n pipeline loss.jsonl; done
ls -la "$OUT" | tee -a "$LOG"
echo "== done $(date -u +%T), $(( $(date +%s) - START )) s" | tee -a "$LOG"

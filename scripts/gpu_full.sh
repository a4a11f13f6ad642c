#!/usr/bin/env bash
# Copyright 2026 The lcoupling Authors.
# SPDX-License-Identifier: Apache-2.0
#
# The paper protocols on one accelerator, each step timed:
#   1. MNIST    python -m experiments.run --config configs/mnist.py:gpu     (5 betas x 30 epochs, 10 000 test images)
#   2. Gaussian python -m experiments.run --config configs/gaussian.py:gpu  (10 repeats x 110 000 trials)
#   3. make bench (benchmarks/coupling.py, benchmarks/gaussian.py)
#   4. the language-model benchmarks in bfloat16: benchmarks/lm.py (forward passes vs roofline) and
#      benchmarks/specdec.py with SmolLM2-135M and a drafter (verification cost, tokens/s per scheme)
#   5. the paper's model family (make lm-qwen): the four speculative-decoding studies' :qwen protocols
#      (Qwen2.5-Coder-0.5B drafting for 1.5B, bfloat16 on the accelerator) and both benchmarks with the pair
# then prints the tables. Times go to OUT_DIR/times.tsv, logs to OUT_DIR/<step>.log, the device to
# OUT_DIR/devices.txt. Every step resumes (re-running skips finished sweep points and epochs).
#
# usage: scripts/gpu_full.sh [--tiny] [OUT_DIR]        (= make gpu-paper; OUT_DIR default runs/gpu_full)
#   --tiny   the same commands on tiny sizes (seconds on a CPU): tests the plumbing.
# Environment: PYTHON (default .venv/bin/python if present, else python), DATA_DIR (default data),
#   MNIST_ARGS / GAUSSIAN_ARGS: extra --config.FIELD=VALUE flags (e.g. the bfloat16 option
#   MNIST_ARGS=--config.train.compute_dtype=bfloat16),
#   STEPS: only these steps, by their names in times.tsv, comma- or space-separated (e.g. on a
#   short accelerator lease, STEPS=gaussian,bench_coupling,bench_gaussian); default all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, also for benchmarks/*.py

TINY=0
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; shift; fi
OUT=${1:-runs/gpu_full}
DATA_DIR=${DATA_DIR:-data}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
mkdir -p "$OUT"
TIMES="$OUT/times.tsv"
[[ -f "$TIMES" ]] || printf 'step\tseconds\texit\tstarted\n' > "$TIMES"

STEPS=${STEPS:-}
want() {  # want NAME: whether STEPS selects this step
  [[ -z "$STEPS" || ",${STEPS// /,}," == *",$1,"* ]]
}

step() {  # step NAME COMMAND...: runs it, logs it, appends its wall time (unless STEPS skips it)
  local name=$1; shift
  if ! want "$name"; then echo "== $name: not in STEPS, skipped"; return 0; fi
  local t0 started rc
  t0=$(date +%s.%N); started=$(date -Iseconds)
  echo "== $name: $*"
  set +e
  "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  printf '%s\t%s\t%s\t%s\n' "$name" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')" "$rc" "$started" >> "$TIMES"
  return "$rc"
}

"$PYTHON" -c "import jax; print(jax.devices()); print(jax.__version__)" > "$OUT/devices.txt"
cat "$OUT/devices.txt"

# The VAE checkpoints go to $OUT/mnist/checkpoints (config.checkpoint_dir = "{workdir}/checkpoints").
MNIST=(--config configs/mnist.py:gpu --workdir "$OUT/mnist" --config.data_dir="$DATA_DIR")
GAUSSIAN=(--config configs/gaussian.py:gpu --workdir "$OUT/gaussian")
BENCH_COUPLING=()
BENCH_GAUSSIAN=()
BENCH_LM=(--dtype bfloat16)
BENCH_SPECDEC=(--target smollm2-135m --drafter "${DRAFTER:-early_exit_linear:4}")
LM_QWEN=(--models qwen2.5-coder)
QWEN_STUDY=()
BENCH_LM_QWEN=(--model qwen2.5-coder-1.5b --dtype bfloat16)
BENCH_SPECDEC_QWEN=(--target qwen2.5-coder-1.5b --drafter model:qwen2.5-coder-0.5b
                    --num_drafts 2,4,8 --json "$OUT/speedup_qwen.json")
if [[ $TINY == 1 ]]; then
  MNIST+=(--config.num_train_images=256 --config.num_test_images=16 --config.train.epochs=1
          "--config.betas=(0.15,0.55)" "--config.num_codewords_grid=(64,128)"
          --config.fixed_num_codewords=64 --config.num_repeats=1 --config.chunk_size=8
          --config.num_examples=2 --config.train.batch_size=32 --config.train.widths.channels=8
          --config.train.widths.hidden=16 --config.train.widths.side_features=8
          --config.train.widths.side_hidden=8 --config.train.widths.estimator_hidden=8)
  GAUSSIAN+=(--config.num_codewords=256 --config.num_selection_trials=16 --config.num_eval_trials=32
             --config.num_repeats=1 --config.chunk_size=16)
  BENCH_COUPLING=(--quick --batch 1 --reps 1)
  BENCH_GAUSSIAN=(--quick --impls threefry2x32)
  BENCH_LM+=(--quick --reps 1 --prompt_len 16)
  BENCH_SPECDEC+=(--quick --reps 1)
  # the Qwen steps' plumbing with SmolLM2 drafting for itself (no 1.6 GB download)
  LM_QWEN=(--models smollm2)
  QWEN_STUDY=(--config.target=smollm2-135m --config.drafter=model:smollm2-135m
              "--config.prompt_indices=(114,)" --config.num_seeds=1 --config.max_new_tokens=4
              --config.batch_size=1)
  BENCH_LM_QWEN=(--model smollm2-135m --quick --reps 1 --prompt_len 16)
  BENCH_SPECDEC_QWEN=(--target smollm2-135m --drafter model:smollm2-135m --quick --reps 1 --seeds 1
                      --new_tokens 4 --num_drafts 2,4 --skip_verification_cost
                      --json "$OUT/speedup_qwen.json")
fi

step data "$PYTHON" -m lcoupling.data fetch --data_dir "$DATA_DIR"
# shellcheck disable=SC2086
step mnist "$PYTHON" -m experiments.run "${MNIST[@]}" ${MNIST_ARGS:-}
# shellcheck disable=SC2086
step gaussian "$PYTHON" -m experiments.run "${GAUSSIAN[@]}" ${GAUSSIAN_ARGS:-}
step bench_coupling "$PYTHON" benchmarks/coupling.py "${BENCH_COUPLING[@]}"
step bench_gaussian "$PYTHON" benchmarks/gaussian.py "${BENCH_GAUSSIAN[@]}"
step lm "$PYTHON" -m lcoupling.lm fetch --data_dir "$DATA_DIR"
step bench_lm "$PYTHON" benchmarks/lm.py --data_dir "$DATA_DIR" "${BENCH_LM[@]}"
step bench_specdec "$PYTHON" benchmarks/specdec.py --data_dir "$DATA_DIR" "${BENCH_SPECDEC[@]}"
step lm_qwen "$PYTHON" -m lcoupling.lm fetch --data_dir "$DATA_DIR" "${LM_QWEN[@]}"
for s in specdec_iid specdec_diverse specdec_matching specdec_consistency; do
  extra=()
  if [[ $TINY == 1 ]]; then
    case $s in
      specdec_iid) extra=("--config.num_drafts=(2,)" "--config.schemes=('autoregressive','sps','gls')"
                          "--config.timing_prompts=(114,)");;
      specdec_diverse) extra=("--config.temperature_pairs=((1.0,2.0),)" "--config.timing_prompts=(114,)");;
      specdec_matching) extra=("--config.num_drafts=(2,)" --config.num_mc_samples=16);;
      specdec_consistency) extra=("--config.schemes=('gls',)");;
    esac
  fi
  step "${s}_qwen" "$PYTHON" -m experiments.run --config "configs/$s.py:qwen" --workdir "$OUT/${s}_qwen" \
      --config.data_dir="$DATA_DIR" "${QWEN_STUDY[@]}" "${extra[@]}"
  if want "${s}_qwen"; then
    "$PYTHON" -m "lcoupling.studies.$s" "$OUT/${s}_qwen" > "$OUT/${s}_qwen_tables.md"
  fi
done
step bench_lm_qwen "$PYTHON" benchmarks/lm.py --data_dir "$DATA_DIR" "${BENCH_LM_QWEN[@]}"
step bench_specdec_qwen "$PYTHON" benchmarks/specdec.py --data_dir "$DATA_DIR" "${BENCH_SPECDEC_QWEN[@]}"
if want mnist; then "$PYTHON" -m lcoupling.studies.mnist "$OUT/mnist" > "$OUT/mnist_tables.md"; fi
if want gaussian; then "$PYTHON" -m lcoupling.studies.gaussian "$OUT/gaussian" > "$OUT/gaussian_tables.md"; fi
echo
echo "times (s):"
column -t -s $'\t' "$TIMES" 2>/dev/null || cat "$TIMES"
echo "tables: $OUT/*_tables.md   figures: $OUT/*/figures/   speed-ups: $OUT/speedup_qwen.json"

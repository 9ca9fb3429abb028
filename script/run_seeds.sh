#!/bin/sh
# Issue 26: the multi-seed tables of docs/results/ (paper Tables 2-3 and the ablations, with their
# spread). Trains and evaluates, on the embedded toy zoo (built first if missing):
#   1. DNA-Det and no_pretrain, seeds 0-4            -> docs/results/seeds_methods.{md,csv,json}
#   2. all seven methods, seeds 0-2 (adds the rest)  -> the same table
#   3. DNA-Det in fp32 (amp=off), seeds 0-2          -> docs/results/seeds_dnadet_fp32.{md,csv,json}
# Two trainings side by side, one thread each. Re-running resumes: a finished seed is never
# retrained. On a 2-core AMD EPYC with native bf16 (AVX512-BF16) this took about 2 hours: 87 min
# for the 25 runs of the method table, 36 min for the three fp32 runs (beside other work).
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PARALLEL=${PARALLEL:-2}
OUT=${OUT:-docs/results}
TITLE="DNA-Det, its ablations and three baselines on the toy zoo"

sh script/install.sh
$PYTHON eval/run_seeds.py --methods DNA-Det no_pretrain --seeds 0 1 2 3 4 --tag main --parallel "$PARALLEL" \
    --out "$OUT/seeds_methods" --title "$TITLE"
$PYTHON eval/run_seeds.py --seeds 0 1 2 --tag main --parallel "$PARALLEL" --out "$OUT/seeds_methods" --title "$TITLE"
$PYTHON eval/run_seeds.py --methods DNA-Det --seeds 0 1 2 --tag fp32 --parallel "$PARALLEL" \
    --set amp=off --pre_set amp=off --out "$OUT/seeds_dnadet_fp32" --title "DNA-Det in fp32 (amp=off) on the toy zoo"

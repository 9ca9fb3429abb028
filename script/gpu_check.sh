#!/bin/sh
# Issue 12: check a CUDA machine end to end in one command (meant to take under 8 minutes on
# one GPU; passed on an NVIDIA H200, docs/performance.md).
# On generated 128-px images, at the paper's full geometry (crop 128 -> 512, 16 crops of 64,
# width 64, batch 32 / 128): stage 1 (pretrain config) and stage 2 (celeba config) for a few
# iterations, stage 2 again with torch.compile, cross_test (exact PIL and device-side resize),
# predict, a one-process torchrun run (NCCL), and the benchmark (DEVICE=cuda CONFIG_NAME=celeba).
# Prints one summary block: pass/FAIL and seconds per step, the precision used, steps/s,
# GPU memory peak and the share of a step spent waiting for data. Exit status 1 if a step failed.
#
#   sh script/gpu_check.sh                      # on the GPU machine
#   DEVICE=cpu QUICK=1 sh script/gpu_check.sh   # tiny settings on CPU: tests this script itself
# Logs of every step: $WORK/logs/<step>.log
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}            # cuda | cuda:N; cpu only to test the script (with QUICK=1)
QUICK=${QUICK:-0}                 # 1: tiny model and crops, no workers (a CPU smoke run)
WORK=${WORK:-${TMPDIR:-/tmp}/dnadet_gpu_check}   # scratch folder, emptied first
PER_CLASS=${PER_CLASS:-48}        # generated 128-px images per class (5 classes)
ITERS=${ITERS:-3}                 # training iterations per stage

SHORT="max_epochs=1 iters_per_epoch=$ITERS"
STAGE1_SET="$SHORT pretrain_val_per_class=1"
STAGE2_SET="$SHORT"
BENCH_ARGS="--repeats 1 --data_batches 20 --steps 20"
if [ "$QUICK" = 1 ]; then
    TINY="width=8 resize_size=128 multi_size=32 crop_num=4 num_workers=0 val_batch_size=16"
    STAGE1_SET="$STAGE1_SET $TINY batch_size=4"
    STAGE2_SET="$STAGE2_SET $TINY batch_size=2"
    BENCH_ARGS="--repeats 1 --data_batches 3 --steps 2 --warmup 1 --set $TINY batch_size=2"
fi

case $DEVICE in
    cuda*)
        $PYTHON -c '
import sys, torch
if not torch.cuda.is_available():
    built = torch.version.cuda or "no CUDA (a CPU-only build)"
    sys.exit(f"gpu_check: no CUDA device: torch.cuda.is_available() is False (torch {torch.__version__}, "
             f"built with {built}). Run this on a machine with an NVIDIA GPU and its driver, "
             f"or test the script itself with DEVICE=cpu QUICK=1.")' ;;
    cpu) [ "$QUICK" = 1 ] || echo "gpu_check: DEVICE=cpu at full geometry is very slow; use QUICK=1" >&2 ;;
    *) echo "gpu_check: DEVICE must be cuda, cuda:N or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac

rm -rf "$WORK"
mkdir -p "$WORK/logs"
RESULTS=$WORK/results.txt
: >"$RESULTS"
STATUS=0
STAGE1=$WORK/pretrain_train/models/pretrain_val/pretrain/run_check
STAGE2=$WORK/gpucheck_train/models/gpucheck_val/celeba/run_check
LISTS=$WORK/gpucheck_test/annotations

# step NAME NEEDS COMMAND...: run COMMAND (output to logs/NAME.log) unless step NEEDS did not pass
step() {
    name=$1; needs=$2; shift 2
    if [ -n "$needs" ] && ! grep -q "^$needs pass" "$RESULTS"; then
        echo "$name skipped (needs $needs)" >>"$RESULTS"; STATUS=1; return 0
    fi
    echo "=== [$(date +%H:%M:%S)] $name"
    started=$(date +%s)
    if "$@" >"$WORK/logs/$name.log" 2>&1; then result=pass; else result=FAIL; STATUS=1; fi
    echo "$name $result $(( $(date +%s) - started ))s" >>"$RESULTS"
    if [ "$result" = FAIL ]; then
        echo "--- $name failed; last lines of $WORK/logs/$name.log:" >&2
        tail -n 15 "$WORK/logs/$name.log" >&2
    fi
}

make_data() {
    $PYTHON - "$WORK" "$PER_CLASS" <<'EOF'
import os
import sys

from analysis.benchmark import synthetic_items
from configs import load_config
from data.annotations import write_annotations

root, per_class = sys.argv[1], int(sys.argv[2])
items = synthetic_items(os.path.join(root, "images"), load_config("celeba"), per_class)  # 128 px
for name, part, labels in (("gpucheck_train", items, True), ("gpucheck_val", items[0::4], True),
                           ("gpucheck_test", items[1::4], True), ("pretrain_train", items, False),
                           ("pretrain_val", items[2::4], False)):
    write_annotations(os.path.join(root, name, "annotations", f"{name}.txt"), part, with_labels=labels)
write_annotations(os.path.join(root, "gpucheck_test", "annotations", "gpucheck_test_cross_seed.txt"),
                  items[3::4])
print(f"{len(items)} images of 128 px in {root}/images")
EOF
}

stage1() {
    # shellcheck disable=SC2086
    $PYTHON main.py --data_path "$WORK" --train_collection pretrain_train --val_collection pretrain_val \
        --config_name pretrain --run_id check --device "$DEVICE" --pretrain --set $STAGE1_SET
}

stage2() {   # stage2 RUN_ID [extra --set values]
    run_id=$1; shift
    # shellcheck disable=SC2086
    $PYTHON main.py --data_path "$WORK" --train_collection gpucheck_train --val_collection gpucheck_val \
        --config_name celeba --run_id "$run_id" --device "$DEVICE" --pretrain_model_path "$STAGE1/model.pth" \
        --set $STAGE2_SET "$@"
}

cross_test() {   # cross_test PIPELINE
    $PYTHON eval/cross_test.py --model_path "$STAGE2/model.pth" --config_name celeba --device "$DEVICE" \
        --pipeline "$1" --out_dir "$WORK/cross_test_$1" \
        --test_data_paths "$LISTS/gpucheck_test.txt" "$LISTS/gpucheck_test_cross_seed.txt"
}

predict() {
    $PYTHON eval/predict.py --model_path "$STAGE2/model.pth" --device "$DEVICE" \
        --json "$WORK/predict.json" "$WORK/images/1"
}

torchrun_one() {   # one process under torchrun; on CUDA it must have used NCCL (NCCL_DEBUG=INFO lines)
    # shellcheck disable=SC2086
    NCCL_DEBUG=INFO $PYTHON -m torch.distributed.run --standalone --nproc_per_node=1 main.py \
        --data_path "$WORK" --train_collection gpucheck_train --val_collection gpucheck_val \
        --config_name celeba --run_id ddp --device "$DEVICE" --pretrain_model_path "$STAGE1/model.pth" \
        --set $STAGE2_SET || return 1
    case $DEVICE in
        cuda*) grep -q "NCCL INFO" "$WORK/logs/torchrun.log" || {
                   echo "gpu_check: NCCL was not used (no 'NCCL INFO' line): engine.distributed starts no"
                   echo "process group when WORLD_SIZE=1, so one process does not exercise NCCL/DDP"
                   return 1; } ;;
    esac
}

benchmark() {
    # shellcheck disable=SC2086
    CONFIG_NAME=celeba DEVICE=$DEVICE REPEATS=1 sh script/benchmark.sh $BENCH_ARGS
}

START=$(date +%s)
step data "" make_data
step stage1 data stage1
step stage2 stage1 stage2 check
step compile stage1 stage2 compile compile=true
step cross_test stage2 cross_test pil
step cross_test_gpu_resize stage2 cross_test batched
step predict stage2 predict
step torchrun stage1 torchrun_one
step benchmark "" benchmark

# ---------------------------------------------------------------- summary
epoch_seconds() {   # epoch_seconds RUN_DIR: seconds of epoch 1 (ITERS steps + validation)
    grep -o '"seconds": [0-9.]*' "$1/metrics.jsonl" 2>/dev/null | head -n 1 | cut -d' ' -f2
}
BENCH=$WORK/logs/benchmark.log
ROW=$(grep '^batched + uint8 cache' "$BENCH" 2>/dev/null || true)
echo
echo "================ gpu_check summary ($DEVICE, QUICK=$QUICK, $(( $(date +%s) - START )) s in all)"
$PYTHON -c 'import torch; print("torch", torch.__version__, "| CUDA", torch.version.cuda,
    "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")' 2>/dev/null || true
sed 's/^/step  /' "$RESULTS"
echo "stage 2 precision: $(grep -o 'precision [a-z0-9]*: .*' "$STAGE2/train.log" 2>/dev/null | head -n 1)"
echo "epoch 1 ($ITERS steps + validation): stage 1 $(epoch_seconds "$STAGE1") s, stage 2 $(epoch_seconds "$STAGE2") s," \
     "compiled $(epoch_seconds "$WORK/gpucheck_train/models/gpucheck_val/celeba/run_compile") s"
if [ -n "$ROW" ]; then
    echo "$ROW" | awk '{ printf "benchmark, celeba geometry, cached path: %.2f steps/s (%.3f s a step), data %s%% of a step, waiting for data %s%%\n", 1 / $(NF-2), $(NF-2), $(NF-1), $NF }'
fi
grep -h '^peak GPU memory\|^bf16 speedup\|^training speedup\|^speedup' "$BENCH" 2>/dev/null | sed 's/^/benchmark: /' || true
if [ "$STATUS" = 0 ]; then echo "gpu_check: all steps passed"; else echo "gpu_check: FAILED (see $WORK/logs/)"; fi
exit "$STATUS"

#!/bin/sh
# The whole DNA-Det pipeline on the embedded toy zoo, on CPU:
#   install -> build the toy GAN zoo -> annotation lists -> stage 1 (transformation
#   pre-training) -> stage 2 (architecture attribution) -> cross tests (paper table)
#   (closed set, four cross tests, unseen architectures: open set) -> t-SNE and Grad-CAM figures.
# Usage: [AMP=bf16] bash script/run_demo.sh [--quick | --long-stage1]
#   --quick: a tiny zoo and a few iterations per stage (a smoke run of a few minutes).
#   --long-stage1: stage 1 until its validation stops improving (3,700 and 7,400 steps in two runs,
#     instead of 600: some 30-60 more minutes on 2 cores), in runs of its own (run_demo_long); see
#     docs/results.md, "Stage 1 at the budget it needs", for what it changes.
#   AMP=bf16: train and evaluate under bf16 autocast (faster on a CPU with AMX or AVX512-BF16, on a
#     GPU; the default, amp=auto, is fp32, whose results the multi-seed tables describe).
# Re-running continues where it stopped (the zoo is cached, runs resume).
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-auto}
SCALE=default
ZOO=${ZOO:-toy_zoo}        # where the zoo is built (cached)
DATA=${DATA:-toy_data}     # lists and run directories
STAGE1_SET=""
STAGE2_SET=""
EVAL_SET=""
AMP=${AMP:-}               # empty: the config's amp (auto = fp32)
RUN_ID=demo
SPREAD_TABLE=docs/results/seeds_methods.json      # the recipe's multi-seed results (trained in fp32)
SPREAD_METHOD=DNA-Det
SPREAD_PRECISION="--bf16_table docs/results/seeds_methods_bf16.json"   # for a run trained with amp=bf16
case "$1" in
    "") ;;
    --quick)
        SCALE=tiny
        ZOO=toy_zoo_tiny
        DATA=toy_data_quick
        STAGE1_SET="max_epochs=1 iters_per_epoch=4"
        STAGE2_SET="max_epochs=1 iters_per_epoch=6" ;;
    --long-stage1)
        RUN_ID=demo_long
        STAGE1_SET="max_epochs=80 early_stop_bar=6"
        SPREAD_TABLE=docs/results/seeds_stage1_ablation.json
        SPREAD_METHOD=stage1_converged
        SPREAD_PRECISION="--table_precision bf16" ;;   # that table's runs trained in bf16
    *)
        echo "run_demo.sh: unknown option '$1'; use --quick, --long-stage1 or nothing" >&2
        exit 2 ;;
esac
if [ -n "$AMP" ]; then
    STAGE1_SET="$STAGE1_SET amp=$AMP"
    STAGE2_SET="$STAGE2_SET amp=$AMP"
    EVAL_SET="--set amp=$AMP"
fi
STAGE1_DIR=$DATA/pretrain_train/models/pretrain_val/toy_pretrain/run_$RUN_ID
STAGE2_DIR=$DATA/toy_train/models/toy_val/toy/run_$RUN_ID
LISTS=$DATA/toy_test/annotations

step() { echo; echo "=== [$(date +%H:%M:%S)] $*"; }
resume_flag() { if [ -f "$1/checkpoint.pth" ]; then echo "--resume"; fi; }

step "1/7 install requirements"
sh script/install.sh

step "2/7 build the toy GAN zoo ($SCALE) in $ZOO/"
$PYTHON DataPrepare/make_toy_zoo.py --out "$ZOO" --scale "$SCALE"

step "3/7 write annotation lists in $DATA/"
$PYTHON DataPrepare/generate_.py --mode toy --data_root "$ZOO" --save_path "$DATA"
$PYTHON DataPrepare/generate_.py --mode pretrain --data_root "$ZOO" --save_path "$DATA"

step "4/7 stage 1: pre-training on 170 image transformations"
# shellcheck disable=SC2046,SC2086
$PYTHON main.py --data_path "$DATA" --train_collection pretrain_train --val_collection pretrain_val \
    --config_name toy_pretrain --run_id "$RUN_ID" --device "$DEVICE" --pretrain \
    $(resume_flag "$STAGE1_DIR") ${STAGE1_SET:+--set $STAGE1_SET}

step "5/7 stage 2: architecture attribution, initialised from stage 1"
# shellcheck disable=SC2046,SC2086
$PYTHON main.py --data_path "$DATA" --train_collection toy_train --val_collection toy_val \
    --config_name toy --run_id "$RUN_ID" --device "$DEVICE" --pretrain_model_path "$STAGE1_DIR/model.pth" \
    $(resume_flag "$STAGE2_DIR") ${STAGE2_SET:+--set $STAGE2_SET}

step "6/7 cross tests (paper Table 2 on the toy zoo)"
$PYTHON eval/cross_test.py --model_path "$STAGE2_DIR/model.pth" --config_name toy --device "$DEVICE" \
    --out_dir "$STAGE2_DIR/cross_test" $EVAL_SET \
    --test_data_paths "$LISTS/toy_test.txt" "$LISTS/toy_test_cross_seed.txt" \
    "$LISTS/toy_test_cross_loss.txt" "$LISTS/toy_test_cross_finetune.txt" \
    "$LISTS/toy_test_cross_dataset.txt" "$LISTS/toy_test_unseen_arch.txt"
if [ "$SCALE" = default ]; then   # where this run stands against the recipe's multi-seed results
    # shellcheck disable=SC2086
    $PYTHON eval/seed_spread.py --results "$STAGE2_DIR/cross_test/results.json" \
        --table "$SPREAD_TABLE" --method "$SPREAD_METHOD" $SPREAD_PRECISION
fi

step "7/7 figures: t-SNE of cross-test features and Grad-CAM"
cat "$LISTS/toy_test_cross_seed.txt" "$LISTS/toy_test_cross_loss.txt" \
    "$LISTS/toy_test_cross_finetune.txt" "$LISTS/toy_test_cross_dataset.txt" > "$DATA/toy_test_cross_all.txt"
$PYTHON visualize/tsne.py --model_path "$STAGE2_DIR/model.pth" --config_name toy --device "$DEVICE" \
    --draw_data_path "$DATA/toy_test_cross_all.txt" --out_dir "$STAGE2_DIR/tsne" $EVAL_SET
$PYTHON visualize/gradcam.py --model_path "$STAGE2_DIR/model.pth" --config_name toy --device "$DEVICE" \
    --draw_data_path "$LISTS/toy_test.txt" --num 4 --out_dir "$STAGE2_DIR/gradcam" $EVAL_SET

step "done: results in $STAGE2_DIR (cross_test/, tsne/, gradcam/)"

#!/bin/sh
# Paper Figure 1: t-SNE of the pooled backbone features of the combined cross-test images
# (cross-seed + cross-loss + cross-finetune + cross-dataset), perplexity 15, up to 4,000 images.
# Defaults: the toy model trained by script/run_demo.sh. Extra arguments go to visualize/tsne.py,
# e.g. --compare OTHER/model.pth --compare_name baseline (two panels, as in the paper).
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}           # holds toy_test/annotations/
EXPERIMENT=${EXPERIMENT:-toy}              # toy | celeba | lsun (list prefix)
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
MODEL=${MODEL:-$DATA_PATH/${EXPERIMENT}_train/models/${EXPERIMENT}_val/$CONFIG_NAME/run_demo/model.pth}
NUM=${NUM:-4000}
PERPLEXITY=${PERPLEXITY:-15}
DEVICE=${DEVICE:-auto}
OUT_DIR=${OUT_DIR:-outputs/tsne/${EXPERIMENT}_cross_all}
LISTS=$DATA_PATH/${EXPERIMENT}_test/annotations
COMBINED=$OUT_DIR/${EXPERIMENT}_test_cross_all.txt

mkdir -p "$OUT_DIR"
cat "$LISTS/${EXPERIMENT}_test_cross_seed.txt" "$LISTS/${EXPERIMENT}_test_cross_loss.txt" \
    "$LISTS/${EXPERIMENT}_test_cross_finetune.txt" "$LISTS/${EXPERIMENT}_test_cross_dataset.txt" \
    > "$COMBINED"    # the feature cache keys on the contents, so rewriting it costs nothing

$PYTHON visualize/tsne.py --model_path "$MODEL" --config_name "$CONFIG_NAME" \
    --draw_data_path "$COMBINED" --num "$NUM" --perplexity "$PERPLEXITY" \
    --device "$DEVICE" --out_dir "$OUT_DIR" "$@"

#!/bin/sh
# Robustness to post-processing (SPEC section 11; the released README's crop, blur, JPEG,
# noise and lighting): accuracy of one model on one test list under every perturbation and
# level, as a table ($OUT_DIR/robustness.csv/.md/.json) and a curve (robustness.png).
# Defaults: the toy model of script/run_demo.sh on the toy closed test list.
#   MAX_IMAGES=500 sh script/run_robustness.sh          # a seeded subset, for speed
#   sh script/run_robustness.sh --perturbations jpeg gaussian_blur --levels jpeg=90,50
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}
EXPERIMENT=${EXPERIMENT:-toy}             # toy | celeba | lsun | in_the_wild
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
MODEL=${MODEL:-$DATA_PATH/${EXPERIMENT}_train/models/${EXPERIMENT}_val/$CONFIG_NAME/run_demo/model.pth}
TEST_LIST=${TEST_LIST:-$DATA_PATH/${EXPERIMENT}_test/annotations/${EXPERIMENT}_test.txt}
MAX_IMAGES=${MAX_IMAGES:-0}               # 0 = the whole list
DEVICE=${DEVICE:-auto}
OUT_DIR=${OUT_DIR:-$(dirname "$MODEL")/robustness/$(basename "$TEST_LIST" .txt)}

$PYTHON eval/robustness.py --model_path "$MODEL" --config_name "$CONFIG_NAME" --device "$DEVICE" \
    --test_data_path "$TEST_LIST" --max_images "$MAX_IMAGES" --out_dir "$OUT_DIR" "$@"

#!/bin/sh
# Paper Figure 6: Grad-CAM of the predicted class at the output of the second stage's keep
# block (main.3.main.2), a few test images per class, with a contact sheet.
# Defaults: the toy model trained by script/run_demo.sh. Extra arguments go to
# visualize/gradcam.py, e.g. --target 0 or --layer_name main.5.main.2.
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}
EXPERIMENT=${EXPERIMENT:-toy}
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
MODEL=${MODEL:-$DATA_PATH/${EXPERIMENT}_train/models/${EXPERIMENT}_val/$CONFIG_NAME/run_demo/model.pth}
LIST=${LIST:-$DATA_PATH/${EXPERIMENT}_test/annotations/${EXPERIMENT}_test.txt}
LAYER=${LAYER:-main.3.main.2}
NUM=${NUM:-4}                              # images per true class
DEVICE=${DEVICE:-auto}
OUT_DIR=${OUT_DIR:-outputs/gradcam/${EXPERIMENT}_test}

$PYTHON visualize/gradcam.py --model_path "$MODEL" --config_name "$CONFIG_NAME" \
    --draw_data_path "$LIST" --layer_name "$LAYER" --num "$NUM" \
    --device "$DEVICE" --out_dir "$OUT_DIR" "$@"

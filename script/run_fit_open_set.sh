#!/bin/sh
# Open-set statistics for an existing model (README "Open-set attribution"): class means, the
# shared covariance and the calibrated "unknown architecture" thresholds, fitted once on the
# training and validation lists and written beside the weights as model.openset.npz.
# main.py already does this after training; use this for other weights, e.g. the authors' model.pth:
#   EXPERIMENT=celeba DATA_PATH=/data/dnadet MODEL=weights/celeba/model.pth sh script/run_fit_open_set.sh
# Defaults: the toy model of script/run_demo.sh. Extra arguments go to eval/fit_open_set.py.
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}          # holds ${EXPERIMENT}_{train,val}/annotations/
EXPERIMENT=${EXPERIMENT:-toy}             # toy | celeba | lsun | in_the_wild (list prefix)
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
MODEL=${MODEL:-$DATA_PATH/${EXPERIMENT}_train/models/${EXPERIMENT}_val/$CONFIG_NAME/run_demo/model.pth}
DEVICE=${DEVICE:-auto}
MAX_IMAGES=${MAX_IMAGES:-10000}           # training images for the class means (0 = all)

$PYTHON eval/fit_open_set.py --model_path "$MODEL" --config_name "$CONFIG_NAME" --device "$DEVICE" \
    --train_data_path "$DATA_PATH/${EXPERIMENT}_train/annotations/${EXPERIMENT}_train.txt" \
    --val_data_path "$DATA_PATH/${EXPERIMENT}_val/annotations/${EXPERIMENT}_val.txt" \
    --max_images "$MAX_IMAGES" "$@"

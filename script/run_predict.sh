#!/bin/sh
# "Which architecture made this image?": top-k classes for image files and folders.
# Defaults: the toy model of script/run_demo.sh on the toy zoo's fine-tuned ProGAN images.
#   sh script/run_predict.sh path/to/image.png path/to/folder
#   MODEL=weights/celeba/model.pth CONFIG_NAME=celeba sh script/run_predict.sh faces/
# Writes $OUT_DIR/predictions.json and .csv; exit status 1 if any input could not be read.
# Open set: with $MODEL's model.openset.npz an image above the calibrated threshold is answered
# "unknown architecture (top guess: ...)"; OPEN_SET=off gives the closed-set answer only,
# OPEN_SET_SCORE=msp|energy|mahalanobis|cosine picks the score (default: eval/predict.py's).
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}
ZOO=${ZOO:-toy_zoo}
CONFIG_NAME=${CONFIG_NAME:-toy}
MODEL=${MODEL:-$DATA_PATH/toy_train/models/toy_val/$CONFIG_NAME/run_demo/model.pth}
TOP_K=${TOP_K:-3}
THRESHOLD=${THRESHOLD:-0.5}
BATCH_SIZE=${BATCH_SIZE:-32}
DEVICE=${DEVICE:-auto}
OUT_DIR=${OUT_DIR:-outputs/predict}
OPEN_SET=${OPEN_SET:-auto}                # auto (when model.openset.npz exists) | on | off
OPEN_SET_SCORE=${OPEN_SET_SCORE:-}

if [ $# -eq 0 ]; then
    set -- "$ZOO/GANs/progan/ft_C"
fi
mkdir -p "$OUT_DIR"
$PYTHON eval/predict.py --model_path "$MODEL" --config_name "$CONFIG_NAME" --device "$DEVICE" \
    --top_k "$TOP_K" --threshold "$THRESHOLD" --batch_size "$BATCH_SIZE" --open_set "$OPEN_SET" \
    ${OPEN_SET_SCORE:+--open_set_score "$OPEN_SET_SCORE"} \
    --json "$OUT_DIR/predictions.json" --csv "$OUT_DIR/predictions.csv" "$@"

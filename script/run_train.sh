#!/bin/sh
# Stage 2 (paper Table 2, celeba experiment): patchwise contrastive + cross-entropy
# training on the closed set, initialised from the stage-1 weights.
set -e
cd "$(dirname "$0")/.."

DATA_PATH=${DATA_PATH:-./dataset}          # holds celeba_train/, celeba_val/, pretrain_train/
EXPERIMENT=${EXPERIMENT:-celeba}           # celeba | lsun | in_the_wild
TRAIN_COLLECTION=${EXPERIMENT}_train
VAL_COLLECTION=${EXPERIMENT}_val
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
RUN_ID=${RUN_ID:-1}
DEVICE=${DEVICE:-auto}
PRETRAIN_MODEL=${PRETRAIN_MODEL:-$DATA_PATH/pretrain_train/models/pretrain_val/pretrain/run_1/model.pth}

python main.py --data_path "$DATA_PATH" --train_collection "$TRAIN_COLLECTION" \
    --val_collection "$VAL_COLLECTION" --config_name "$CONFIG_NAME" --run_id "$RUN_ID" \
    --device "$DEVICE" --pretrain_model_path "$PRETRAIN_MODEL" "$@"

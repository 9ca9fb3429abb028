#!/bin/sh
# Stage 1 (paper section "pre-training on image transformations"): train the
# 170-way transformation classifier on the real images listed by
#   python DataPrepare/generate_.py --mode pretrain --data_root $DATA_ROOT --save_path $DATA_PATH
set -e
cd "$(dirname "$0")/.."

DATA_PATH=${DATA_PATH:-./dataset}          # holds pretrain_train/ and pretrain_val/
TRAIN_COLLECTION=pretrain_train
VAL_COLLECTION=pretrain_val
CONFIG_NAME=${CONFIG_NAME:-pretrain}
RUN_ID=${RUN_ID:-1}
DEVICE=${DEVICE:-auto}

python main.py --data_path "$DATA_PATH" --train_collection "$TRAIN_COLLECTION" \
    --val_collection "$VAL_COLLECTION" --config_name "$CONFIG_NAME" --run_id "$RUN_ID" \
    --device "$DEVICE" --pretrain "$@"

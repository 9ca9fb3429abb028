#!/bin/sh
# Stage 2 (paper Table 2, celeba experiment) on NPROC GPUs of one machine with
# DistributedDataParallel (torchrun). batch_size stays the global batch (32 items x
# 5 classes): each process loads batch_size / NPROC items, the contrastive loss sees
# the all-gathered global batch, BatchNorm is synchronised (SyncBatchNorm, CUDA), and
# only rank 0 logs, validates and writes the run directory. Extra arguments go to main.py.
set -e
cd "$(dirname "$0")/.."

NPROC=${NPROC:-2}                          # processes = GPUs on this machine
DATA_PATH=${DATA_PATH:-./dataset}          # holds celeba_train/, celeba_val/, pretrain_train/
EXPERIMENT=${EXPERIMENT:-celeba}           # celeba | lsun | in_the_wild
TRAIN_COLLECTION=${EXPERIMENT}_train
VAL_COLLECTION=${EXPERIMENT}_val
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
RUN_ID=${RUN_ID:-ddp}
DEVICE=${DEVICE:-auto}                     # auto: one GPU per process (nccl); cpu: gloo
# stage-1 weights; set PRETRAIN_MODEL= (empty) to start from scratch
PRETRAIN_MODEL=${PRETRAIN_MODEL-$DATA_PATH/pretrain_train/models/pretrain_val/pretrain/run_1/model.pth}

torchrun --standalone --nnodes=1 --nproc_per_node="$NPROC" main.py \
    --data_path "$DATA_PATH" --train_collection "$TRAIN_COLLECTION" \
    --val_collection "$VAL_COLLECTION" --config_name "$CONFIG_NAME" --run_id "$RUN_ID" \
    --device "$DEVICE" --pretrain_model_path "$PRETRAIN_MODEL" "$@"

#!/bin/sh
# Paper Table 2 (multiple cross tests) and GANs in the wild: one trained model on the closed
# test list, the four cross tests and (where it exists) the open-set list, into one table (printed, and saved as results.md/.csv/
# .json with confusion PNGs in $OUT_DIR). Predictions go to X/pred/ next to each list X.txt.
# Defaults: the toy model of script/run_demo.sh. Every variable can be set from the environment:
#   EXPERIMENT=celeba DATA_PATH=/data/dnadet MODEL=weights/celeba/model.pth sh script/run_cross_test.sh
#   EXPERIMENT=in_the_wild ... (lists: in_the_wild_test.txt and in_the_wild_test_cross_dataset.txt)
# Extra arguments go to eval/cross_test.py, e.g. --reuse or --set val_batch_size=64.
set -e
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA_PATH=${DATA_PATH:-toy_data}          # holds ${EXPERIMENT}_test/annotations/
EXPERIMENT=${EXPERIMENT:-toy}             # toy | celeba | lsun | in_the_wild (list prefix)
CONFIG_NAME=${CONFIG_NAME:-$EXPERIMENT}
MODEL=${MODEL:-$DATA_PATH/${EXPERIMENT}_train/models/${EXPERIMENT}_val/$CONFIG_NAME/run_demo/model.pth}
DEVICE=${DEVICE:-auto}
OUT_DIR=${OUT_DIR:-$(dirname "$MODEL")/cross_test}
LISTS=$DATA_PATH/${EXPERIMENT}_test/annotations

# the closed test list and whichever cross-test lists exist (in_the_wild has cross_dataset only)
TESTS="$LISTS/${EXPERIMENT}_test.txt"
for kind in seed loss finetune dataset; do
    if [ -f "$LISTS/${EXPERIMENT}_test_cross_$kind.txt" ]; then
        TESTS="$TESTS $LISTS/${EXPERIMENT}_test_cross_$kind.txt"
    fi
done
# the open-set list (labels -1: architectures never trained on; the toy zoo has one). It needs
# $MODEL's open-set statistics (model.openset.npz: main.py writes them, or script/run_fit_open_set.sh)
if [ -f "$LISTS/${EXPERIMENT}_test_unseen_arch.txt" ]; then
    TESTS="$TESTS $LISTS/${EXPERIMENT}_test_unseen_arch.txt"
fi

# shellcheck disable=SC2086  # TESTS is a space-separated list of paths
$PYTHON eval/cross_test.py --model_path "$MODEL" --config_name "$CONFIG_NAME" --device "$DEVICE" \
    --out_dir "$OUT_DIR" --test_data_paths $TESTS "$@"

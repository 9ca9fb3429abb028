#!/bin/sh
# Empirical study of GAN fingerprints (SPEC section 10, paper section 3) on the toy zoo.
# Trains a patch classifier at one position and maps its accuracy over a grid of positions,
# for the architecture task (4 architectures, each pooling several models) and the weight
# task (3 DCGANs differing only in seed). Outputs: $OUT/{arch,weight}_acc_map.{csv,png},
# $OUT/{arch,weight}_summary.json.
#   sh script/run_fingerprint_study.sh
#   ZOO=/tmp/toy_zoo_default DATA=toy_data_default sh script/run_fingerprint_study.sh
set -e
cd "$(dirname "$0")/.."

ZOO=${ZOO:-toy_zoo}                 # built with make_toy_zoo.py unless $ZOO/manifest.json exists
DATA=${DATA:-toy_data}              # where the fingerprint_* lists go
OUT=${OUT:-outputs/fingerprint}
DEVICE=${DEVICE:-auto}
PATCH=${PATCH:-16}                  # patch side (px) on the 64-px zoo images
STRIDE=${STRIDE:-16}                # 16: a 4x4 grid of non-overlapping patches
POSITION=${POSITION:-16,16}         # training patch corner (y,x): an interior patch (see claims.md)
EPOCHS=${EPOCHS:-8}
BATCH=${BATCH:-128}
WIDTH=${WIDTH:-16}                  # SimpleCNN base width
SEED=${SEED:-0}

if [ ! -f "$ZOO/manifest.json" ]; then
    python DataPrepare/make_toy_zoo.py --out "$ZOO"
fi
python DataPrepare/generate_.py --mode fingerprint --data_root "$ZOO" --save_path "$DATA"
for TASK in arch weight; do
    python eval/fingerprint_study.py --task "$TASK" --data_path "$DATA" --out_dir "$OUT" \
        --patch_size "$PATCH" --stride "$STRIDE" --train_position "$POSITION" \
        --epochs "$EPOCHS" --batch_size "$BATCH" --width "$WIDTH" --seed "$SEED" --device "$DEVICE"
done
echo "maps: $OUT/arch_acc_map.png $OUT/weight_acc_map.png"

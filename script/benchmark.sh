#!/bin/sh
# Issues 7 and 12 (speed): data-path and model throughput of the released-style pipeline
# (per-image Pillow resize + crops in DataLoader workers) against this project's
# (uint8 images decoded once, batched resize/crop/normalise), and training steps in fp32
# against bf16 autocast, in one run on this machine. Prints "bf16 speedup: X.XX"
# (fp32 step time / bf16 step time); the last line is "speedup: X.XX" (this project's
# crops/s / released-style crops/s).
# Extra arguments go to eval/benchmark.py, e.g. `sh script/benchmark.sh --parts data`.
set -e
cd "$(dirname "$0")/.."

CONFIG_NAME=${CONFIG_NAME:-toy}       # toy (2-core CPU targets) or celeba (paper size, GPU)
DEVICE=${DEVICE:-auto}                # auto | cpu | cuda | cuda:N
REPEATS=${REPEATS:-3}                 # interleaved rounds; the table shows median [min-max]
DATA_LIST=${DATA_LIST:-}              # optional annotation list; default: synthetic PNGs

if [ -n "$DATA_LIST" ]; then
    set -- --data_list "$DATA_LIST" "$@"
fi
python eval/benchmark.py --config_name "$CONFIG_NAME" --device "$DEVICE" --repeats "$REPEATS" "$@"

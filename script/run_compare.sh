#!/bin/sh
# DNA-Det against its ablations and three baselines on the toy zoo (paper Tables 2-3 and
# ablation study): every model is trained by main.py and evaluated by eval/cross_test.py on
# the closed test set and the four cross tests, into one table ($OUT/results.md).
#   DNA-Det            = stage 1 (toy_pretrain) + stage 2 (toy, --pretrain_model_path)
#   no_pretrain        = toy without --pretrain_model_path
#   no_contrastive     = toy_no_contrastive with --pretrain_model_path
#   no_pretrain_no_con = toy_no_contrastive without it
#   ce_only, attnet, dct = whole-image cross-entropy baselines (configs toy_ce_only, toy_attnet, toy_dct)
# Re-running resumes (or skips) finished runs. Budgets: PRE_SET and STAGE2_SET (defaults cut the
# toy configs to 40 stage-1 and 45 stage-2 steps so the whole comparison fits ~30 min on 2 CPU
# cores; set PRE_SET=" " STAGE2_SET=" " to train with the configs' own schedules).
# METHODS picks a subset (names as in the table; default all seven), e.g. the pre-training
# ablation at the demo's schedules, one seed:
#   METHODS="DNA-Det no_pretrain" PRE_SET=" " STAGE2_SET=" " TAG=ablation sh script/run_compare.sh
#   METHODS="DNA-Det no_pretrain" PRE_SET=" " STAGE2_SET=" " SEED=1 TAG=ablation_s1 \
#       PRE_TAG=ablation PRE_SEED=0 sh script/run_compare.sh      # second stage-2 seed, same stage 1
#   sh script/run_compare.sh
#   ZOO=/tmp/toy_zoo_default DATA=toy_data_default sh script/run_compare.sh
set -e
cd "$(dirname "$0")/.."

ZOO=${ZOO:-toy_zoo}                 # built with make_toy_zoo.py unless $ZOO/manifest.json exists
DATA=${DATA:-toy_data}              # lists and run directories
OUT=${OUT:-outputs/compare}
DEVICE=${DEVICE:-auto}
SEED=${SEED:-0}                     # training seed of every run
TAG=${TAG:-compare}                 # run ids: run_${TAG}_*
PRE_TAG=${PRE_TAG:-$TAG}            # stage-1 run id (run_$PRE_TAG): share one stage 1 between
PRE_SEED=${PRE_SEED:-$SEED}         #   stage-2 seeds with PRE_TAG and PRE_SEED
PRE_SET=${PRE_SET:-"max_epochs=2 iters_per_epoch=20"}       # extra --set, stage 1 (toy_pretrain)
STAGE2_SET=${STAGE2_SET:-"max_epochs=3 iters_per_epoch=15 val_max_images=250"}  # every stage-2 run
# the methods: name, config, run id, uses stage 1
PLAN="DNA-Det toy ${TAG}_full yes
no_pretrain toy ${TAG}_nopre no
no_contrastive toy_no_contrastive ${TAG}_pre yes
no_pretrain_no_con toy_no_contrastive ${TAG}_nopre no
ce_only toy_ce_only $TAG no
attnet toy_attnet $TAG no
dct toy_dct $TAG no"
ALL_METHODS=$(echo "$PLAN" | cut -d' ' -f1 | tr '\n' ' ')
METHODS=${METHODS:-$ALL_METHODS}
for method in $METHODS; do
    case " $ALL_METHODS " in
        *" $method "*) ;;
        *) echo "error: METHODS: unknown method '$method'; choose from: ${ALL_METHODS% }" >&2; exit 2 ;;
    esac
done
wanted() { case " $METHODS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

train() {  # train CONFIG RUN_ID TRAIN VAL SEED SET [main.py options...]
    config=$1; run=$2; train_list=$3; val_list=$4; seed=$5; extra=$6; shift 6
    resume=""
    if [ -f "$DATA/$train_list/models/$val_list/$config/run_$run/checkpoint.pth" ]; then
        resume="--resume"
    fi
    python main.py --data_path "$DATA" --train_collection "$train_list" --val_collection "$val_list" \
        --config_name "$config" --run_id "$run" --device "$DEVICE" $resume "$@" \
        --set seed="$seed" $extra </dev/null   # stdin: not the caller's loop input
}
weights() {  # weights CONFIG RUN_ID -> the best stage-2 weights
    echo "$DATA/toy_train/models/toy_val/$1/run_$2/model.pth"
}

if [ ! -f "$ZOO/manifest.json" ]; then
    python DataPrepare/make_toy_zoo.py --out "$ZOO"
fi
python DataPrepare/generate_.py --mode toy --data_root "$ZOO" --save_path "$DATA"
python DataPrepare/generate_.py --mode pretrain --data_root "$ZOO" --save_path "$DATA"

PRE="$DATA/pretrain_train/models/pretrain_val/toy_pretrain/run_$PRE_TAG/model.pth"
NEED_STAGE1=no
for method in $(echo "$PLAN" | awk '$4 == "yes" { print $1 }'); do
    if wanted "$method"; then NEED_STAGE1=yes; fi
done
if [ "$NEED_STAGE1" = yes ]; then
    train toy_pretrain "$PRE_TAG" pretrain_train pretrain_val "$PRE_SEED" "$PRE_SET" --pretrain
fi

MODELS=""
while read -r method config run stage1; do
    wanted "$method" || continue
    if [ "$stage1" = yes ]; then
        train "$config" "$run" toy_train toy_val "$SEED" "$STAGE2_SET" --pretrain_model_path "$PRE"
    else
        train "$config" "$run" toy_train toy_val "$SEED" "$STAGE2_SET"
    fi
    MODELS="$MODELS $method=$(weights "$config" "$run")"
done <<EOF_PLAN
$PLAN
EOF_PLAN

LISTS="$DATA/toy_test/annotations"
# shellcheck disable=SC2086
python eval/cross_test.py --config_name toy --device "$DEVICE" --out_dir "$OUT" --methods $MODELS \
    --test_data_paths "$LISTS/toy_test.txt" "$LISTS/toy_test_cross_seed.txt" \
        "$LISTS/toy_test_cross_loss.txt" "$LISTS/toy_test_cross_finetune.txt" \
        "$LISTS/toy_test_cross_dataset.txt"
echo "table: $OUT/results.md (also .csv, .json)"

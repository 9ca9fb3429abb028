"""Cross tests and GANs in the wild (SPEC section 8): trained models on several test lists.

    python eval/cross_test.py --model_path RUN/model.pth --config_name celeba \
        --test_data_paths D/celeba_test/annotations/celeba_test.txt \
                          D/celeba_test/annotations/celeba_test_cross_seed.txt ...
    python eval/cross_test.py --methods dnadet=A/model.pth ce_only=B/model.pth --config_name toy \
        --test_data_paths ...

Rows are named from the list file names (``*_test`` -> closed, ``*_cross_seed`` -> cross-seed,
cross-loss, cross-finetune, cross-dataset; otherwise the file stem). For each list X.txt the
predictions go to X/pred/ (X/pred/<method>/ with --methods): result.txt (released format),
scores.csv (path,label,pred,prob_0..), recomputed unless --reuse. The table (Markdown, CSV,
JSON) and one confusion-matrix PNG per list and method go to --out_dir (default: cross_test/
next to the first model). Preprocessing: SPEC section 4, whole image, one pass; settings from
--set, then the model's model.json, then the config.

Open set: a list whose labels are all -1 holds architectures the model never saw. Its row
reports, per unknown score (msp, energy, mahalanobis, relative_mahalanobis, cosine, knn, vim), AUROC, FPR at 95 % TPR and OSCR
against the closed list (*_test.txt, required in the same call) and the share flagged unknown
at the threshold stored in MODEL.openset.npz (eval/fit_open_set.py; main.py writes it after
training); the other rows add the share of their known images wrongly flagged. --open_set auto
(default) scores the open set when that file exists or a -1 list is given; without the file
only --open_set_scores msp energy work (uncalibrated: no flagged share).
"""
import argparse
import os
import sys

from engine.cli import add_model_arguments
from analysis.open_set import MODES, SCORES
from analysis.cross_test import run_cross_test
from engine.inference import load_eval_setup, parse_methods
from analysis.reports import results_markdown, write_results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=None, metavar="NAME=PATH",
                        help="several models side by side, one table column pair each")
    parser.add_argument("--test_data_paths", nargs="+", required=True, help="annotation lists X.txt")
    parser.add_argument("--out_dir", default=None, help="tables and confusion PNGs (default MODEL_DIR/cross_test)")
    parser.add_argument("--reuse", action="store_true", help="reuse X/pred/ files made by the same model")
    parser.add_argument("--open_set", default="auto", choices=MODES,
                        help="auto: when MODEL.openset.npz exists or a -1 list is given (default)")
    parser.add_argument("--open_set_scores", nargs="+", default=None, choices=SCORES,
                        help="unknown scores to report (default: all in MODEL.openset.npz)")
    add_model_arguments(parser, model_required=False, pipeline=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        paths = parse_methods(args.model_path, args.methods)
        setups = {name: load_eval_setup(path, args.config_name, args.set, args.device, args.pipeline)
                  for name, path in paths.items()}
        for name, setup in setups.items():
            for note in setup.notes:
                print(f"note: {name or setup.model_path}: {note}", file=sys.stderr)
        records = run_cross_test(setups, args.test_data_paths, reuse=args.reuse,
                                 open_set_mode=args.open_set, scores=args.open_set_scores)
        out_dir = args.out_dir or os.path.join(os.path.dirname(os.path.abspath(next(iter(paths.values())))),
                                               "cross_test")
        class_names = {name: setup.class_names for name, setup in setups.items()}
        written = write_results(out_dir, records, class_names)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for record in records:
        if record["skipped"]:
            named = "; ".join(f"{path} ({reason})" for path, reason in record["skipped"][:5])
            more = f"; ... see {record['pred_dir']}/skipped.txt" if len(record["skipped"]) > 5 else ""
            print(f"warning: {record['test']}: skipped {len(record['skipped'])} unreadable image(s): "
                  f"{named}{more}", file=sys.stderr)
    print(results_markdown(records, class_names))
    reused = sum(record["reused"] for record in records)
    print(f"tables: {written['md']}, {written['csv']}, {written['json']}; "
          f"{len(written['confusion'])} confusion PNG(s) in {out_dir}; predictions in X/pred/ next "
          f"to each list ({reused} of {len(records)} reused)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

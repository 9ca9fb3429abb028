"""Fit the open-set statistics of a trained model once: class means, shared covariance, thresholds.

    python eval/fit_open_set.py --model_path RUN/model.pth --config_name toy \
        --train_data_path toy_data/toy_train/annotations/toy_train.txt \
        --val_data_path toy_data/toy_val/annotations/toy_val.txt [--max_images 10000]

The pooled backbone features of (at most --max_images, per-class share, seeded) training
images give the class means, the Ledoit-Wolf shared covariance, the cosine prototypes, the
kNN bank and the ViM subspace; the validation images give one threshold per unknown score
(msp, energy, mahalanobis, relative_mahalanobis, cosine, knn, vim) keeping 95 % of them. Written beside the weights as MODEL.openset.npz (plain arrays,
read without pickle, with the weights' SHA-1: eval/cross_test.py and eval/predict.py refuse
it once the weights change). main.py runs this step by itself after stage 2; this command is
for existing weights, e.g. the authors' released model.pth. Preprocessing as in evaluation.
"""
import argparse
import sys

from engine.cli import add_model_arguments, load_setup
from analysis.open_set import MAX_FIT_IMAGES, describe_fit, fit_and_save, read_statistics


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_data_path", required=True, help="training list (path<TAB>label)")
    parser.add_argument("--val_data_path", required=True, help="validation list: calibrates the thresholds")
    parser.add_argument("--max_images", type=int, default=MAX_FIT_IMAGES,
                        help=f"training images used at most, 0 = all (default {MAX_FIT_IMAGES})")
    add_model_arguments(parser, pipeline=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        setup = load_setup(args, args.pipeline)
        path = fit_and_save(setup, args.train_data_path, args.val_data_path, args.max_images)
        stats = read_statistics(path)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe_fit(stats, path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

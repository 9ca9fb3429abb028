"""Robustness to post-processing (SPEC section 11): accuracy under JPEG, blur, resize, noise, crop, gamma.

    python eval/robustness.py --model_path RUN/model.pth --config_name toy \
        --test_data_path D/toy_test/annotations/toy_test.txt [--perturbations jpeg gaussian_blur] \
        [--levels jpeg=90,50] [--max_images 500] [--out_dir OUT]

Every image of the list (real and fake alike) is perturbed in memory, deterministically, at
each level, and each level is evaluated separately. Writes OUT/robustness.csv (perturbation,
level, acc, macro_f1, ...), .md, .json and robustness.png (accuracy against strength, one panel
per perturbation, clean accuracy dashed). Default OUT: robustness/<list name>/ next to the model.
"""
import argparse
import os
import sys

from engine.cli import add_model_arguments, load_setup
from data.annotations import read_annotations
from data.postprocess import PERTURBATIONS
from data.sampling import seeded_subset
from analysis.reports import robustness_markdown
from analysis.robustness import parse_levels, run_robustness, sweep_plan, write_robustness


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test_data_path", required=True, help="annotation list (path<TAB>label)")
    parser.add_argument("--perturbations", nargs="+", default=None, choices=sorted(PERTURBATIONS),
                        help="default: all")
    parser.add_argument("--levels", nargs="+", default=[], metavar="NAME=L1,L2",
                        help="replace the default levels of a perturbation")
    parser.add_argument("--max_images", type=int, default=0, help="seeded subset of the list (0 = all)")
    parser.add_argument("--out_dir", default=None, help="default MODEL_DIR/robustness/<list name>")
    add_model_arguments(parser, pipeline=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        setup = load_setup(args, args.pipeline)
        plan = sweep_plan(args.perturbations, parse_levels(args.levels))
        items = read_annotations(args.test_data_path, class_num=setup.class_num)
        items = [items[i] for i in seeded_subset(items, setup.config.seed, total=args.max_images)]
        stem = os.path.splitext(os.path.basename(args.test_data_path))[0]
        out_dir = args.out_dir or os.path.join(os.path.dirname(os.path.abspath(args.model_path)),
                                               "robustness", stem)
        rows = run_robustness(setup, items, plan)
        written = write_robustness(out_dir, rows, title=f"{stem}: {len(items)} images")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if rows[0]["skipped"]:
        named = "; ".join(f"{path} ({reason})" for path, reason in rows[0]["skipped"][:5])
        more = "; ..." if len(rows[0]["skipped"]) > 5 else ""
        print(f"warning: {len(rows[0]['skipped'])} unreadable image(s) left out of every level: "
              f"{named}{more}", file=sys.stderr)
    print(robustness_markdown(rows))
    print(f"written: {written['csv']}, {written['md']}, {written['json']}, {written['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

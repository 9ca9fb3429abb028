"""Grad-CAM heat maps on whole images (paper Figure 6, SPEC section 9).

    python visualize/gradcam.py --model_path M --config_name toy --draw_data_path LIST \
        [--layer_name main.3.main.2] [--num 4] [--target K] [--out_dir D]

For every chosen image (--num per true class, seeded; 0 = all) writes
OUT_DIR/{index:05d}_true-{name}_pred-{name}_{input,heatmap,overlay}.png, where index is the
line of the list (0-based), and OUT_DIR/contact_sheet.png with a few images per class. The map
is for the predicted class, or for --target K on every image. The default layer is the output
of the second stage's keep block (after its LeakyReLU); any name of model.named_modules() works.
"""
import argparse
import os
import sys

from engine.cli import add_model_arguments, load_setup
from data.annotations import read_annotations
from analysis.gradcam import DEFAULT_LAYER, run_gradcam


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw_data_path", required=True, help="annotation list (path<TAB>label)")
    parser.add_argument("--layer_name", default=DEFAULT_LAYER, help=f"module name (default {DEFAULT_LAYER})")
    parser.add_argument("--num", type=int, default=4, help="images per true class (0 = every image)")
    parser.add_argument("--target", type=int, default=None, help="explain this class instead of the prediction")
    parser.add_argument("--sheet_per_class", type=int, default=3, help="images per class on the contact sheet")
    parser.add_argument("--legend", nargs="+", default=None, help="class names, one per class")
    parser.add_argument("--out_dir", default=None, help="default outputs/gradcam/<list name>")
    add_model_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        setup = load_setup(args)
        items = read_annotations(args.draw_data_path, class_num=setup.class_num)
        list_stem = os.path.splitext(os.path.basename(args.draw_data_path))[0]
        out_dir = args.out_dir or os.path.join("outputs", "gradcam", list_stem)
        summary = run_gradcam(setup, items, out_dir, layer_name=args.layer_name,
                              target=args.target, per_class=args.num, sheet_per_class=args.sheet_per_class)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Grad-CAM at {args.layer_name} of {summary['n_images']} images "
          f"({summary['n_correct']} predicted correctly, {summary['n_skipped']} unreadable skipped) "
          f"-> {out_dir}; contact sheet {summary['sheet']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

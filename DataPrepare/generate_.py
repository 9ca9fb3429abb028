"""Write the annotation lists of one experiment (SPEC sections 4, 7 and 10).

    python DataPrepare/generate_.py --mode celeba --data_root ROOT --save_path ROOT

Modes: celeba, lsun, in_the_wild, toy, pretrain, fingerprint. Lists go to
``{save_path}/{prefix}_{split}/annotations/{prefix}_{split}.txt`` (cross tests:
``{prefix}_test/annotations/{prefix}_test_cross_{kind}.txt``); see DataPrepare/splits/.
"""
import argparse
import sys

from DataPrepare.splits import MODES, generate_lists


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, choices=sorted(MODES))
    parser.add_argument("--data_root", required=True, help="dataset root of the layout")
    parser.add_argument("--save_path", required=True, help="where the list folders go")
    parser.add_argument("--seed", type=int, default=0, help="seeds caps and splits")
    parser.add_argument("--allow_missing", action="store_true",
                        help="warn about and skip missing source directories")
    parser.add_argument("--max_per_class", type=positive_int, default=None,
                        help="closed-set cap (celeba/lsun: 20000 per class; in_the_wild: "
                             "5000 per train directory; others: none)")
    parser.add_argument("--max_per_cross_dir", type=positive_int, default=None,
                        help="cap per cross-test directory (2000; in_the_wild: 500)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        generate_lists(args.mode, args.data_root, args.save_path, seed=args.seed,
                       allow_missing=args.allow_missing, max_per_class=args.max_per_class,
                       max_per_cross_dir=args.max_per_cross_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

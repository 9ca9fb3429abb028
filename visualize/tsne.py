"""t-SNE of pooled backbone features of whole images (paper Figure 1, SPEC section 9).

    python visualize/tsne.py --model_path M --config_name toy --draw_data_path cross_all.txt \
        [--num 4000] [--perplexity 15] [--legend real dcgan ...] [--compare OTHER.pth]

Writes OUT_DIR/tsne.png (one colour per class, legend from the class names; two panels with
--compare), OUT_DIR/tsne.csv (path,label,x,y; tsne_compare.csv for the second model) and a
feature cache OUT_DIR/cache/ that is reused until the model or the list changes (--do_extract
recomputes). Lists longer than --num are subsampled, stratified by class, with the config's seed.
"""
import argparse
import os
import sys

from engine.cli import add_model_arguments, load_setup
from analysis.features import run_tsne


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw_data_path", required=True, help="annotation list (path<TAB>label)")
    parser.add_argument("--num", type=int, default=4000, help="at most this many images (0 = all)")
    parser.add_argument("--perplexity", type=float, default=15.0, help="t-SNE perplexity (paper: 15)")
    parser.add_argument("--legend", nargs="+", default=None, help="class names, one per class")
    parser.add_argument("--out_dir", default=None, help="default outputs/tsne/<list name>")
    parser.add_argument("--model_name", default=None, help="title of the first panel")
    parser.add_argument("--compare", default=None, metavar="OTHER_MODEL", help="second panel's model")
    parser.add_argument("--compare_name", default=None, help="title of the second panel")
    parser.add_argument("--do_extract", action="store_true", help="recompute cached features")
    add_model_arguments(parser)
    return parser.parse_args(argv)


def panel_title(name, path: str, model) -> str:
    return name or f"{model.info.get('method', 'model')}: {os.path.basename(os.path.dirname(os.path.abspath(path)))}"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        setup = load_setup(args)
        setups = [(panel_title(args.model_name, args.model_path, setup.model), setup)]
        if args.compare:
            other = load_setup(args, model_path=args.compare)
            if other.class_num != setup.class_num:
                raise ValueError(f"--compare {args.compare} has {other.class_num} classes, "
                                 f"{args.model_path} {setup.class_num}: compare models of one task")
            setups.append((panel_title(args.compare_name, args.compare, other.model), other))
        list_stem = os.path.splitext(os.path.basename(args.draw_data_path))[0]
        out_dir = args.out_dir or os.path.join("outputs", "tsne", list_stem)
        summary = run_tsne(setups, args.draw_data_path, out_dir, num=args.num, perplexity=args.perplexity,
                           force=args.do_extract)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    cache = ", ".join("cached" if hit else "extracted" for hit in summary["from_cache"])
    print(f"t-SNE of {summary['n_images']} images (of {summary['n_listed']} listed; "
          f"{summary['n_skipped']} unreadable skipped), perplexity {summary['perplexity']:g}, "
          f"features {cache}")
    print(f"figure {summary['png']}; embedding {', '.join(summary['csvs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

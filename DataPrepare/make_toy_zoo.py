"""Build the toy GAN zoo, the project's embedded default dataset.

    python DataPrepare/make_toy_zoo.py --out toy_zoo [--scale tiny|default] [--seed 0]
        [--cross_tests standard|wide] [--extra_photos_A DIR] [--extra_photos_B DIR] [--extra_photos_C DIR] [--workers 2] [--threads 1]
    python DataPrepare/make_toy_zoo.py --out toy_zoo --audit_only

Writes real/{A,B,C}, train_crops/{A,B,C}, GANs/{arch}/{variant}, grids/, weights/ and
manifest.json under --out (layout in DataPrepare/toy_zoo/sources.py), then prints the
content-shortcut audit (DataPrepare/toy_zoo/audit.py). Rerunning resumes: finished sources
are kept. --audit_only audits an existing zoo and builds nothing. --cross_tests wide adds 9
generators so that cross-seed and cross-loss cover every closed-set family (5 and 8 generators
instead of 2 and 2; a standard zoo is widened in place, its files unchanged).
"""
import argparse
import os

from DataPrepare.toy_zoo import SCALES, audit_zoo, build_zoo, format_audit, format_summary


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (created; resumed if it holds a zoo)")
    parser.add_argument("--scale", default="default", choices=sorted(SCALES), help="tiny: seconds, for tests")
    parser.add_argument("--seed", type=int, default=0, help="zoo seed; same seed -> identical files")
    parser.add_argument("--cross_tests", default="standard", choices=("standard", "wide"),
                        help="wide: cross-seed and cross-loss generators for every closed-set family")
    for domain in "ABC":
        parser.add_argument(f"--extra_photos_{domain}", default=None, help=f"folder of your photos added to domain {domain}")
    parser.add_argument("--workers", type=int, default=2, help="generators trained at once, one process each")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker (fixed: reproducible)")
    parser.add_argument("--audit_only", action="store_true", help="only run the content-shortcut audit on --out")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.audit_only:
        if not os.path.isfile(os.path.join(args.out, "manifest.json")):
            raise SystemExit(f"error: {args.out!r} holds no zoo (no manifest.json); build it first")
        print(format_audit(audit_zoo(args.out)))
        return
    extra = {domain: getattr(args, f"extra_photos_{domain}") for domain in "ABC"}
    manifest = build_zoo(args.out, scale=args.scale, seed=args.seed, extra_photos=extra,
                         threads=args.threads, workers=args.workers, cross_tests=args.cross_tests)
    print(format_summary(manifest))


if __name__ == "__main__":
    main()

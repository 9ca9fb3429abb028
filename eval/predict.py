"""Which architecture made this image? Top-k classes for image files and folders.

    python eval/predict.py --model_path RUN/model.pth [--config_name toy] IMAGE_OR_DIR ... \
        [--top_k 3] [--threshold 0.5] [--json out.json] [--csv out.csv] [--batch_size 32]

Folders are searched recursively for image files. Prints one line per image:
``path: progan 93.1% | dcgan 4.2% | real 1.9%`` with ``[low confidence]`` when the top
probability is below --threshold. A file that cannot be read gets one line
``error: cannot read image PATH: reason`` on stderr; the others are still predicted and
the exit status is 1. Preprocessing is the evaluation's (SPEC section 4); class names come
from the model (model.json / checkpoint) or else the config.

Open set: with MODEL.openset.npz beside the weights (main.py writes it after training;
eval/fit_open_set.py for other weights) an image whose unknown score (--open_set_score,
default energy) is above the calibrated threshold is printed as
``path: unknown architecture (top guess: progan, p=0.97)``. --open_set off gives the plain
closed-set answer; --open_set on makes a missing file an error (auto: a note).
"""
import argparse
import json
import sys
from contextlib import ExitStack

from engine.cli import add_model_arguments, load_setup
from analysis.prediction import (CsvSink, format_record, iter_image_paths, predict_paths,
                                 resolve_open_set)
from analysis.open_set import MODES, PREFERRED_SCORES, SCORES
from data.atomic import atomic_file

DEFAULT_SCORE = "auto"     # the first of analysis.open_set.PREFERRED_SCORES the statistics hold


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    parser.add_argument("--top_k", type=int, default=3, help="classes shown per image (default 3)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="flag predictions whose top probability is below this (default 0.5)")
    parser.add_argument("--json", default=None, help="write all predictions to this JSON file")
    parser.add_argument("--csv", default=None, help="write all predictions to this CSV file")
    parser.add_argument("--batch_size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--open_set", default="auto", choices=MODES,
                        help="answer 'unknown architecture' above the calibrated threshold: auto (when "
                             "MODEL.openset.npz exists, default), on (required), off (closed set)")
    parser.add_argument("--open_set_score", default=DEFAULT_SCORE, choices=("auto",) + SCORES,
                        help=f"unknown score (default auto: the first of {', '.join(PREFERRED_SCORES)} "
                             "that the statistics hold, best measured first)")
    add_model_arguments(parser, pipeline=True)
    args = parser.parse_args(argv)
    args.inputs += [item for item in args.set if "=" not in item]   # `--set k=v IMAGE` keeps IMAGE
    args.set = [item for item in args.set if "=" in item]
    if not args.inputs:
        parser.error("give at least one IMAGE_OR_DIR")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    records, total, failed = [], 0, 0
    try:
        setup = load_setup(args, args.pipeline)
        stats, score, note = resolve_open_set(setup, args.open_set, args.open_set_score)
        if note:
            print(f"note: {note}", file=sys.stderr)
        with ExitStack() as stack:
            # the CSV streams into a temporary file that replaces args.csv only when complete
            sink = CsvSink(stack.enter_context(atomic_file(args.csv, newline="")),
                           args.top_k) if args.csv else None
            for record in predict_paths(setup, iter_image_paths(args.inputs), args.batch_size,
                                        args.top_k, args.threshold, stats=stats, score=score):
                if record["error"]:
                    failed += 1
                    print(f"error: cannot read image {record['path']}: {record['error']}", file=sys.stderr)
                else:
                    print(format_record(record), flush=True)
                if sink:
                    sink.write(record)
                total += 1
                if args.json:
                    records.append(record)
            if not total:       # inside the with: an earlier --csv file stays as it was
                raise ValueError(f"no image files found in {args.inputs}")
        if args.json:
            with atomic_file(args.json) as handle:
                open_info = None if stats is None else {
                    "score": score, "threshold": stats.thresholds[score],
                    "keep_rate": stats.meta["keep_rate"]}
                json.dump({"model": args.model_path, "class_names": setup.class_names,
                           "threshold": args.threshold, "open_set": open_info, "predictions": records},
                          handle, indent=2)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{total - failed} image(s) predicted, {failed} unreadable", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

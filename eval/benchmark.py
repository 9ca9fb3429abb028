"""Data-path and model throughput: the released-style pipeline against this project's
(issue 7), and training steps in fp32 against bf16 autocast (issue 12).

    python eval/benchmark.py --config_name toy [--set key=value ...] [--device auto]
        [--data_list LIST] [--steps 3] [--data_batches 100] [--repeats 3]
        [--parts data,train,model,precision]

Measures, on this machine in one run: (a) the released-style data path (per-image
Pillow resize, random crops, ToTensor and normalise in DataLoader workers), (b) this
project's path (uint8 squares, decoded once and cached, resized/cropped/normalised as a
batch on the training device), both in crops/s and as the share of a training step
spent on data, (c) the model's own step time on a preloaded batch, and (d) that step
in fp32 (amp=off) and under bf16 autocast (amp=bf16), back to back. Without
--data_list it writes synthetic PNGs of the config's image size to a temporary folder.
Prints a table with the line ``bf16 speedup: X.XX`` = fp32 / bf16 step time (d); the
last line is ``speedup: X.XX`` = (b) / (a) in crops/s.
"""
import argparse
import sys
import tempfile

from engine.cli import add_device_and_overrides, config_and_device
from analysis.benchmark import (PARTS, BenchSettings, format_table, list_items, run_benchmark,
                                synthetic_items)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_name", default="toy", help="a module in configs/ (default toy)")
    parser.add_argument("--data_list", default=None,
                        help="annotation list (path<TAB>label) to read images from; default: synthetic PNGs")
    parser.add_argument("--per_class", type=int, default=48, help="synthetic images per class (default 48)")
    parser.add_argument("--data_batches", type=int, default=100, help="batches per data-only measurement (default 100)")
    parser.add_argument("--steps", type=int, default=3, help="training steps timed per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches/steps first (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma list of data (crops/s), train (steps with data), model (preloaded), "
                             "precision (fp32 against bf16 steps)")
    add_device_and_overrides(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config, device = config_and_device(args)
        parts = tuple(part for part in args.parts.split(",") if part)
        settings = BenchSettings(args.data_batches, args.steps, args.warmup, args.repeats, parts)
        with tempfile.TemporaryDirectory(prefix="dnadet_bench_") as folder:
            items = (list_items(args.data_list, config) if args.data_list
                     else synthetic_items(folder, config, args.per_class))
            results = run_benchmark(config, items, device, settings)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_table(results, config, args.config_name, device, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

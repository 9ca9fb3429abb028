"""The learning curve of a stage-1 (transformation pre-training) run, as a results table.

    python eval/stage1_curve.py --run_dir RUN --out docs/results/stage1_converged [--every 5] [--title T]

Reads RUN/metrics.jsonl and RUN/config.json and writes OUT.md (the curve: step, learning rate,
train and validation cross-entropy, top-1, top-5, family accuracy; then the best epoch's
accuracy per transformation family), OUT.csv (every epoch) and OUT.json. Nothing is trained.
"""
import argparse
import json
import os
import sys

from analysis.reports import command_line, stage1_curve, write_stage1_tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", required=True, help="a stage-1 run directory (main.py --pretrain)")
    parser.add_argument("--out", required=True, help="table stem: writes OUT.md, OUT.csv, OUT.json")
    parser.add_argument("--every", type=int, default=1, help="show every N-th epoch in OUT.md (default 1)")
    parser.add_argument("--title", default="Stage 1: learning curve")
    args = parser.parse_args(argv)
    try:
        if args.every < 1:
            raise ValueError(f"--every must be >= 1, got {args.every}")
        with open(os.path.join(args.run_dir, "config.json"), encoding="utf-8") as handle:
            iters = json.load(handle)["iters_per_epoch"]
        with open(os.path.join(args.run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        curve = stage1_curve(records)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {args.run_dir}: {error}", file=sys.stderr)
        return 1
    command = command_line("eval/stage1_curve.py", argv)
    write_stage1_tables(args.out, curve, command, args.title, iters, args.every)
    best = curve["best"]
    print(f"best top-1 {100 * best['top1']:.1f} % at epoch {best['epoch']} (step {best['epoch'] * iters}), "
          f"family accuracy {100 * best['family_acc']:.1f} %; last epoch {curve['last_epoch']}: "
          f"{args.out}.md, .csv, .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

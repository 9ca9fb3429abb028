"""Where one run's cross-test results fall against the multi-seed tables of its recipe.

    python eval/seed_spread.py --results RUN/cross_test/results.json \
        [--table docs/results/seeds_methods.json] [--method DNA-Det] \
        [--fp32_table docs/results/seeds_dnadet_fp32.json]

Prints, per accuracy column and open-set metric, this run's value next to the seeds' n, mean ±
sd and range from the table that ``eval/run_seeds.py`` wrote, so a user whose numbers differ
from the README's can see whether they are within the seed-to-seed spread. The run's training
precision is read from RUN/config.json (``amp_resolved``): bf16 and fp32 give different toy-zoo
numbers (docs/results.md, "Precision"), so a run trained in fp32 is compared with
``--fp32_table`` when one is given, and otherwise the line says that the precisions differ.
"""
import argparse
import json
import os
import sys

from analysis.seeds import run_row, standing


def run_precision(results: str):
    """``amp_resolved`` (bf16, fp16, fp32) of the run whose cross test wrote ``results``
    (RUN/cross_test/results.json -> RUN/config.json), or None when the run has no config.json."""
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(results))), "config.json")
    try:
        with open(config, encoding="utf-8") as handle:
            return json.load(handle).get("amp_resolved")
    except (OSError, ValueError):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="results.json of eval/cross_test.py")
    parser.add_argument("--table", default="docs/results/seeds_methods.json", help="eval/run_seeds.py's JSON table")
    parser.add_argument("--method", default="DNA-Det", help="the table's row to compare with")
    parser.add_argument("--fp32_table", default=None,
                        help="the table (row --method) for a run trained in fp32; --table's runs are bf16")
    args = parser.parse_args(argv)
    precision = run_precision(args.results)
    use_fp32 = bool(precision == "fp32" and args.fp32_table)
    table = args.fp32_table if use_fp32 else args.table
    if not use_fp32 and precision not in (None, "bf16"):
        print(f"note: this run trained in {precision}; the table's runs trained in bf16 (amp=auto on a CPU "
              f"with native bf16), and the two precisions differ beyond the seed spread on some lists "
              f"(docs/results.md, Precision)")
    if not os.path.isfile(table):
        print(f"note: no multi-seed table at {table} (eval/run_seeds.py writes it); nothing to compare")
        return 0
    try:
        with open(table, encoding="utf-8") as handle:
            summaries = json.load(handle)["aggregate"].get(args.method)
        with open(args.results, encoding="utf-8") as handle:
            row = run_row(json.load(handle), args.method, -1)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not summaries:
        print(f"note: {table} has no row {args.method!r}; nothing to compare")
        return 0
    print("\n".join(standing(row, summaries, table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

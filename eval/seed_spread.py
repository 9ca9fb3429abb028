"""Where one run's cross-test results fall against the multi-seed tables of its recipe.

    python eval/seed_spread.py --results RUN/cross_test/results.json \
        [--table docs/results/seeds_methods.json] [--table_precision fp32] [--method DNA-Det] \
        [--bf16_table docs/results/seeds_methods_bf16.json]

Prints, per accuracy column and open-set metric, this run's value next to the seeds' n, mean ±
sd and range from the table that ``eval/run_seeds.py`` wrote, so a user whose numbers differ
from the README's can see whether they are within the seed-to-seed spread. The run's training
precision is read from RUN/config.json (``amp_resolved``): bf16 and fp32 give different toy-zoo
numbers (docs/results/seeds_precision.md), so a run is compared with the table of its precision
(``--table``, whose runs trained in ``--table_precision``, or ``--bf16_table``); when there is
none, with ``--table`` and a line that says the precisions differ.
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
    parser.add_argument("--table_precision", default="fp32", choices=("fp32", "bf16"),
                        help="the precision --table's runs trained in")
    parser.add_argument("--bf16_table", default=None, help="the table (row --method) for a run trained in bf16")
    args = parser.parse_args(argv)
    tables = {"bf16": args.bf16_table} if args.bf16_table else {}
    tables[args.table_precision] = args.table
    precision = run_precision(args.results) or args.table_precision     # no config.json: taken as --table's
    table = tables.get(precision, args.table)
    if precision not in tables:
        print(f"note: this run trained in {precision}; the table's runs trained in {args.table_precision}, and "
              f"the two precisions differ beyond the seed spread on some lists (docs/results/seeds_precision.md)")
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

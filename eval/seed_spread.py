"""Where one run's cross-test results fall against the multi-seed tables of its recipe.

    python eval/seed_spread.py --results RUN/cross_test/results.json \
        [--table docs/results/seeds_methods.json] [--method DNA-Det]

Prints, per accuracy column and open-set metric, this run's value next to the seeds' n, mean ±
sd and range from the table that ``eval/run_seeds.py`` wrote, so a user whose numbers differ
from the README's can see whether they are within the seed-to-seed spread.
"""
import argparse
import json
import os
import sys

from analysis.seeds import run_row, standing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="results.json of eval/cross_test.py")
    parser.add_argument("--table", default="docs/results/seeds_methods.json", help="eval/run_seeds.py's JSON table")
    parser.add_argument("--method", default="DNA-Det", help="the table's row to compare with")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.table):
        print(f"note: no multi-seed table at {args.table} (eval/run_seeds.py writes it); nothing to compare")
        return 0
    try:
        with open(args.table, encoding="utf-8") as handle:
            summaries = json.load(handle)["aggregate"].get(args.method)
        with open(args.results, encoding="utf-8") as handle:
            row = run_row(json.load(handle), args.method, -1)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not summaries:
        print(f"note: {args.table} has no row {args.method!r}; nothing to compare")
        return 0
    print("\n".join(standing(row, summaries, args.table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One multi-seed table from the finished runs of several ``eval/run_seeds.py`` tags.

    python eval/seed_table.py --out docs/results/seeds_stage1_ablation --title "..." \
        --rows stage1_converged=toy_data/seeds/s1conv:DNA-Det stage1_demo=toy_data/seeds/main:DNA-Det \
               scratch=toy_data/seeds/main:no_pretrain \
        --claim stage1_converged:scratch --claim stage1_converged:stage1_demo

Each ``--rows LABEL=FOLDER:METHOD`` takes the rows of METHOD from a tag's row folder
(``DATA/seeds/TAG``) and names them LABEL; one label may gather several folders. Labels of the
form ``METHOD@GROUP`` (e.g. ``DNA-Det@zoo1``) add the between-group / within-group spread
of each method (one-way ANOVA). Each ``--claim FIRST:SECOND`` adds Welch's test of FIRST - SECOND
on every accuracy list; each ``--paired FIRST:SECOND`` a paired t-test over the seeds both labels
have (for the same runs measured two ways, e.g. ``run_seeds.py --weights_of``). Writes OUT.md, OUT.csv and OUT.json like ``eval/run_seeds.py``;
nothing is trained or evaluated.
"""
import argparse
import sys

from analysis.reports import command_line
from analysis.seeds import read_rows, write_tables


def parse_rows(spec: str):
    """``LABEL=FOLDER:METHOD`` -> (label, folder, method)."""
    label, _, source = spec.partition("=")
    folder, _, method = source.rpartition(":")
    if not (label and folder and method):
        raise ValueError(f"--rows {spec!r}: expected LABEL=FOLDER:METHOD, e.g. "
                         f"scratch=toy_data/seeds/main:no_pretrain")
    return label, folder, method


def gather(specs) -> list:
    """The relabelled rows of every spec; an error names a spec that matches no finished run."""
    rows = []
    for label, folder, method in map(parse_rows, specs):
        found = [r for r in read_rows(folder) if r["method"] == method]
        if not found:
            raise ValueError(f"--rows {label}={folder}:{method}: no finished run of {method} in {folder}")
        rows += [{**row, "method": label} for row in found]
    return rows


def label_pair(option: str, spec: str, labels: set) -> tuple:
    """``FIRST:SECOND`` -> (first, second), both --rows labels."""
    first, _, second = spec.partition(":")
    if first not in labels or second not in labels:
        raise ValueError(f"{option} {spec!r}: both sides must be --rows labels ({', '.join(sorted(labels))})")
    return first, second


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", required=True, metavar="LABEL=FOLDER:METHOD")
    parser.add_argument("--claim", action="append", default=[], metavar="FIRST:SECOND",
                        help="Welch's test of FIRST - SECOND (labels) on every accuracy list")
    parser.add_argument("--paired", action="append", default=[], metavar="FIRST:SECOND",
                        help="paired t-test of FIRST - SECOND over matching seeds, on every accuracy list")
    parser.add_argument("--out", required=True, help="table stem: writes OUT.md, OUT.csv, OUT.json")
    parser.add_argument("--title", required=True)
    parser.add_argument("--fingerprint", default="", help="the zoo fingerprint to print with the table")
    args = parser.parse_args(argv)
    try:
        rows = gather(args.rows)
        labels = {row["method"] for row in rows}
        claims = [("difference", *label_pair("--claim", claim, labels)) for claim in args.claim]
        pairs = [label_pair("--paired", pair, labels) for pair in args.paired]
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    command = command_line("eval/seed_table.py", argv)
    write_tables(rows, args.out, command, args.title, args.fingerprint, claims=claims, pairs=pairs)
    print(f"{len(rows)} runs, {len(labels)} labels: {args.out}.md, .csv, .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

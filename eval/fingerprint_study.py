"""Empirical study of GAN fingerprints (SPEC section 10): accuracy map over patch positions.

    python DataPrepare/generate_.py --mode fingerprint --data_root toy_zoo --save_path toy_data
    python eval/fingerprint_study.py --task arch --data_path toy_data --out_dir outputs/fingerprint

Trains a small SimpleCNN on patches cut at one fixed position (``--train_position y,x``)
of the images in ``{data_path}/fingerprint_{task}_train``, tests it on the patches at every
position of a grid over ``fingerprint_{task}_test``, and writes ``{task}_acc_map.csv``,
``{task}_acc_map.png`` (training position outlined) and ``{task}_summary.json`` to
--out_dir. Task ``arch``: classes are architectures, each pooling several models;
``weight``: classes are models of one architecture differing only in seed.
"""
import argparse
import sys

from data.annotations import read_annotations
from engine.device import resolve_device
from analysis.fingerprint import StudySettings, run_study, table_row, write_outputs, write_seed_table
from analysis.reports import command_line
from engine.rundir import annotation_path

CLASS_NAMES = {"arch": ("dcgan", "progan", "bilinear", "subpixel"),
               "weight": ("dcgan_A_seed0", "dcgan_A_seed1", "dcgan_A_seed2")}
DEFAULTS = StudySettings()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(CLASS_NAMES))
    parser.add_argument("--data_path", required=True, help="root of the fingerprint_* list folders")
    parser.add_argument("--train_collection", default=None, help="default fingerprint_{task}_train")
    parser.add_argument("--test_collection", default=None, help="default fingerprint_{task}_test")
    parser.add_argument("--class_names", nargs="+", default=None, help="default: the toy zoo's")
    parser.add_argument("--out_dir", default="outputs/fingerprint", help="where maps and summary go")
    parser.add_argument("--patch_size", type=int, default=DEFAULTS.patch_size, help="patch side in px")
    parser.add_argument("--stride", type=int, default=DEFAULTS.stride, help="grid step in px")
    parser.add_argument("--train_position", default="0,0", metavar="Y,X",
                        help="top-left corner of the training patches, on the grid (default 0,0)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--batch_size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--width", type=int, default=DEFAULTS.width, help="SimpleCNN base width")
    parser.add_argument("--lr", type=float, default=DEFAULTS.learning_rate)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="run the study once per seed (outputs {task}_s{seed}_*), instead of --seed")
    parser.add_argument("--table", default=None, metavar="STEM",
                        help="add the runs to the seed table STEM.md/.json under --label (rows of that label replaced)")
    parser.add_argument("--label", default=None, help="the table row's name (default: the task)")
    parser.add_argument("--no_balance", action="store_true",
                        help="keep every listed image (default: cut each class to the smallest)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    return parser.parse_args(argv)


def parse_position(text: str) -> tuple:
    try:
        y, x = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--train_position expects Y,X (two integers), got {text!r}") from None
    return y, x


def main(argv=None) -> int:
    args = parse_args(argv)
    seeds = args.seeds or [args.seed]
    rows = []
    try:
        names = list(args.class_names or CLASS_NAMES[args.task])
        lists = [annotation_path(args.data_path, collection or f"fingerprint_{args.task}_{split}")
                 for collection, split in ((args.train_collection, "train"), (args.test_collection, "test"))]
        train_items, test_items = (read_annotations(path, class_num=len(names)) for path in lists)
        for seed in seeds:
            settings = StudySettings(patch_size=args.patch_size, stride=args.stride,
                                     train_position=parse_position(args.train_position),
                                     epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                                     learning_rate=args.lr, seed=seed, balance=not args.no_balance)
            result = run_study(train_items, test_items, names, settings, resolve_device(args.device))
            stem = args.task if args.seeds is None else f"{args.task}_s{seed}"
            report(args.task if args.seeds is None else f"{args.task} seed {seed}", result,
                   write_outputs(result, args.out_dir, stem))
            rows.append(table_row(args.label or args.task, seed, result["summary"]))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.table:
        command = command_line("eval/fingerprint_study.py", argv)
        write_seed_table(args.table, args.label or args.task, rows, command)
        print(f"table: {args.table}.md, .json")
    return 0


def report(name: str, result: dict, paths: dict) -> None:
    summary = result["summary"]
    print(f"{name}: accuracy at the training position {summary['train_position_acc']:.4f}, "
          f"elsewhere mean {summary['elsewhere_mean_acc']:.4f} (min {summary['elsewhere_min_acc']:.4f}); "
          f"chance {result['chance']:.4f}")
    print("by ring distance from the training cell: " + ", ".join(
        f"{d}: {acc:.4f}" for d, acc in summary["acc_by_distance"].items()))
    if result["skipped"]:
        print(f"warning: skipped {len(result['skipped'])} unreadable image(s)", file=sys.stderr)
    print(f"wrote {paths['acc_map.csv']}, {paths['acc_map.png']}, {paths['summary.json']}")


if __name__ == "__main__":
    sys.exit(main())

"""Train DNA-Det: stage 1 (--pretrain, 170 image transformations) or stage 2 (architectures).

Lists are read from ``{data_path}/{collection}/annotations/{collection}.txt`` and the
run is written to ``{data_path}/{train_collection}/models/{val_collection}/{config_name}/run_{run_id}/``.
"""
import argparse
import os
import sys

from configs import load_config
from engine.cli import add_device_and_overrides
from engine.device import resolve_device
from engine.distributed import RankFailedError
from engine.inference import load_eval_setup
from analysis.open_set import describe_fit, fit_and_save, read_statistics
from engine.rundir import annotation_path, run_directory
from engine.train import NonFiniteLossError, TrainJob, run_training


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_path", required=True, help="root holding the annotation collections")
    parser.add_argument("--train_collection", required=True, help="e.g. celeba_train or pretrain_train")
    parser.add_argument("--val_collection", required=True, help="e.g. celeba_val or pretrain_val")
    parser.add_argument("--config_name", required=True, help="a module in configs/, e.g. celeba, toy, pretrain")
    parser.add_argument("--run_id", default="1", help="run directory suffix (default 1)")
    parser.add_argument("--pretrain", action="store_true", help="stage 1: train the transformation classifier")
    parser.add_argument("--pretrain_model_path", default=None,
                        help="stage 2: initialise the backbone from these stage-1 weights (model.pth)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its checkpoint.pth")
    add_device_and_overrides(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config_name, args.set)
        job = TrainJob(config=config, config_name=args.config_name,
                       run_dir=run_directory(args.data_path, args.train_collection, args.val_collection,
                                             args.config_name, args.run_id),
                       train_list=annotation_path(args.data_path, args.train_collection),
                       val_list=annotation_path(args.data_path, args.val_collection),
                       stage="pretrain" if args.pretrain else "main",
                       pretrain_model_path=args.pretrain_model_path, resume=args.resume,
                       device=resolve_device(args.device if args.device != "auto" else config.device))
        summary = run_training(job)
    except (ValueError, NonFiniteLossError, RankFailedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not summary["is_main"]:
        return 0
    print(f"best {config.metric} {summary['best_metric']:.4f} at epoch {summary['best_epoch']}; "
          f"run directory {summary['run_dir']}")
    if job.stage == "main":      # "unknown transformation" is not a question: stage 1 has no open set
        try:
            print("\n".join(fit_open_set_step(job, args)))
        except ValueError as error:
            print(f"error: open-set statistics: {error}; the trained weights are in {summary['run_dir']}",
                  file=sys.stderr)
            return 1
    return 0


def fit_open_set_step(job: TrainJob, args: argparse.Namespace) -> list:
    """After training, its own step: the open-set statistics of the best weights on the run's
    training and validation lists (``model.openset.npz``, as ``eval/fit_open_set.py``)."""
    model_path = os.path.join(job.run_dir, "model.pth")
    setup = load_eval_setup(model_path, args.config_name, args.set, str(job.device))
    path = fit_and_save(setup, job.train_list, job.val_list)
    return describe_fit(read_statistics(path), path)


if __name__ == "__main__":
    sys.exit(main())

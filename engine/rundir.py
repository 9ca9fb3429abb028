"""The self-describing run directory (STYLE rule 3).

``{data_path}/{train_collection}/models/{val_collection}/{config_name}/run_{run_id}/``
holds ``config.json``, ``train.log`` (human), ``metrics.jsonl`` (one JSON line per
epoch), ``tb/`` (TensorBoard), ``checkpoint.pth`` (resume), ``model.pth`` (best
weights, released format), ``snapshot_epoch{N}.pth`` and ``skipped_images.txt``.
"""
import json
import logging
import os
import sys
from data.atomic import atomic_file


def run_directory(data_path: str, train_collection: str, val_collection: str,
                  config_name: str, run_id) -> str:
    return os.path.join(data_path, train_collection, "models", val_collection, config_name,
                        f"run_{run_id}")


def annotation_path(data_path: str, collection: str) -> str:
    return os.path.join(data_path, collection, "annotations", f"{collection}.txt")


class RunDirectory:
    """Logger, metrics lines and TensorBoard writer of one run (main process only writes)."""

    def __init__(self, path: str, enabled: bool = True):
        self.path, self.enabled = path, enabled
        self.logger = logging.getLogger(f"dnadet.{path}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self._writer = None
        if enabled:
            os.makedirs(path, exist_ok=True)
            formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
            for handler in (logging.FileHandler(self.file("train.log")), logging.StreamHandler(sys.stderr)):
                handler.setFormatter(formatter)
                self.logger.addHandler(handler)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def log(self, message: str) -> None:
        if self.enabled:
            self.logger.info(message)

    def write_json(self, name: str, obj) -> None:
        if self.enabled:
            with atomic_file(self.file(name)) as handle:
                json.dump(obj, handle, indent=2)

    def append_metrics(self, record: dict) -> None:
        if self.enabled:
            with open(self.file("metrics.jsonl"), "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def scalars(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(self.file("tb"))
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)

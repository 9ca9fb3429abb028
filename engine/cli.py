"""Command-line arguments shared by the entry scripts (main.py, eval/*.py, visualize/*.py)."""
import argparse
import sys
from typing import Optional

from configs import load_config
from engine.device import resolve_device
from engine.inference import load_eval_setup

DEVICE_HELP = "auto (CUDA if present), cpu, cuda or cuda:N"
SET_HELP = "config overrides, strict: an unknown key or a wrong type is an error (e.g. num_workers=0)"


def add_device_and_overrides(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default auto) and ``--set KEY=VALUE ...``."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help=SET_HELP)


def add_model_arguments(parser: argparse.ArgumentParser, model_required: bool = True,
                        config_required: bool = False, pipeline: bool = False) -> None:
    """``--model_path`` and ``--config_name``, plus ``--device`` and ``--set`` (and ``--pipeline``)."""
    if pipeline:
        parser.add_argument("--pipeline", default="pil", choices=("pil", "batched"),
                            help="pil: exact PIL bicubic (default); batched: last resize on the device "
                                 "(faster; the same probabilities within 5e-3)")
    parser.add_argument("--model_path", required=model_required, default=None,
                        help="model.pth (released format) or checkpoint.pth")
    parser.add_argument("--config_name", required=config_required, default=None,
                        help="config module giving preprocessing and class names, e.g. toy"
                             + ("" if config_required else " (default: from model.json)"))
    add_device_and_overrides(parser)


def config_and_device(args: argparse.Namespace):
    """Load ``--config_name`` with the ``--set`` overrides and resolve ``--device``.

    ``--device auto`` defers to the config's ``device`` key (itself ``auto`` by default).
    """
    config = load_config(args.config_name, args.set)
    return config, resolve_device(args.device if args.device != "auto" else config.device)


def load_setup(args: argparse.Namespace, pipeline: str = "pil", model_path: Optional[str] = None):
    """``engine.inference.load_eval_setup`` from the common arguments (``--legend`` too, where
    the script has it); its notes go to stderr. ``model_path`` replaces ``--model_path``."""
    setup = load_eval_setup(model_path or args.model_path, args.config_name, args.set, args.device, pipeline,
                            legend=getattr(args, "legend", None))
    for note in setup.notes:
        print(f"note: {note}", file=sys.stderr)
    return setup

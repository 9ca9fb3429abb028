"""Annotation-list building for DataPrepare/generate_.py (SPEC sections 4, 7, 10).

``generate_lists(mode, data_root, save_path, ...)`` is the one entry point; ``MODES``
names the modes. One module per layout: real_layout (celeba, lsun), in_the_wild,
toy_layout (toy, pretrain, fingerprint); collect (listing, seeded subsets, splits),
sources (missing-directory policy), report (count table).
"""
from .generate import MODES, generate_lists
from .report import GenerationReport

__all__ = ["MODES", "generate_lists", "GenerationReport"]

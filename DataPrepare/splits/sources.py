"""Reading source directories: existence checks, missing-directory policy, caps."""
import os
import warnings
from typing import List, Sequence

from .collect import list_images, seeded_subset, stable_rng
from .plan import Source


class SourceReader:
    """Lists the images of sources under ``data_root`` for one run of one mode.

    A missing directory, or one holding no image, is a ValueError naming it and the
    mode; with ``allow_missing`` it is a warning instead, the source gives no image and
    its directory is recorded in ``missing`` for the end-of-run summary.
    Image paths are absolute (``os.path.abspath`` of the data root + relative path), so
    the lists work from any working directory.
    """

    def __init__(self, mode: str, data_root: str, seed: int, allow_missing: bool):
        self.mode = mode
        self.root = os.path.abspath(data_root)
        self.seed = seed
        self.allow_missing = allow_missing
        self.missing: List[str] = []

    def check_exist(self, sources: Sequence[Source]) -> None:
        """Before listing anything, report every source directory that does not exist."""
        absent = sorted({s.rel_dir for s in sources
                         if not os.path.isdir(os.path.join(self.root, s.rel_dir))})
        if absent and not self.allow_missing:
            names = "\n  ".join(os.path.join(self.root, d) for d in absent)
            raise ValueError(f"mode {self.mode!r}: {len(absent)} source director"
                             f"{'y' if len(absent) == 1 else 'ies'} not found:\n  {names}\n"
                             f"check --data_root, or pass --allow_missing to skip them")
        for rel_dir in absent:
            self._skip(rel_dir, "not found")

    def read(self, source: Source) -> List[str]:
        """Absolute paths of the source's images: sorted, capped by a seeded subset."""
        if source.rel_dir in self.missing:
            return []
        directory = os.path.normpath(os.path.join(self.root, source.rel_dir))
        names = list_images(directory)
        if not names:
            if not self.allow_missing:
                raise ValueError(f"mode {self.mode!r}: source directory {directory} holds no "
                                 f"image; check --data_root, or pass --allow_missing to skip it")
            self._skip(source.rel_dir, "holds no image")
            return []
        names = seeded_subset(names, source.cap, stable_rng(self.seed, source.rel_dir))
        return [os.path.join(directory, *name.split("/")) for name in names]

    def _skip(self, rel_dir: str, why: str) -> None:
        warnings.warn(f"mode {self.mode!r}: skipping source directory "
                      f"{os.path.join(self.root, rel_dir)} ({why}; --allow_missing)",
                      stacklevel=3)
        self.missing.append(rel_dir)

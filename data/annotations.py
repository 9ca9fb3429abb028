"""Annotation lists: one image per line, ``path<TAB>label`` (SPEC section 4).

Pre-training lists hold ``path`` only. Paths are kept exactly as written: relative
to the working directory or absolute. Every error names the file and the line.
Label ``-1`` (``UNKNOWN_LABEL``) means "no known architecture": it marks the images of
open-set lists (e.g. ``toy_test_unseen_arch.txt``) and is read only with ``allow_unknown=True``.
"""
import os
from typing import List, Optional, Sequence, Tuple
from data.atomic import atomic_file

Item = Tuple[str, int]
UNKNOWN_LABEL = -1


def read_annotations(path: str, class_num: Optional[int] = None,
                     with_labels: bool = True, allow_unknown: bool = False) -> List[Item]:
    """Read an annotation file into ``[(image_path, label), ...]``.

    Args:
        path: the list file.
        class_num: when given, every label must lie in ``0..class_num-1``.
        with_labels: False for pre-training lists (``path`` only); labels are then -1.
        allow_unknown: also accept label -1 ("no known architecture"), for open-set lists.
    Raises:
        ValueError: missing file, empty list, malformed line, label out of range or a -1
            where ``allow_unknown`` is False, naming the file and the 1-based line number.
    """
    if not os.path.isfile(path):
        raise ValueError(f"annotation file not found: {path!r} "
                         f"(run DataPrepare/generate_.py first, or check --data_path)")
    items: List[Item] = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            items.append(_parse_line(line, path, number, class_num, with_labels, allow_unknown))
    if not items:
        raise ValueError(f"annotation file {path!r} holds no images")
    return items


def _parse_line(line: str, path: str, number: int, class_num: Optional[int],
                with_labels: bool, allow_unknown: bool) -> Item:
    fields = line.split("\t")
    if not with_labels:
        if len(fields) > 2:
            raise ValueError(f"{path}:{number}: expected 'path' or 'path<TAB>label', got {line!r}")
        return fields[0], -1
    if len(fields) != 2 or not fields[0]:
        raise ValueError(f"{path}:{number}: expected 'path<TAB>label', got {line!r}")
    try:
        label = int(fields[1])
    except ValueError:
        raise ValueError(f"{path}:{number}: label {fields[1]!r} is not an integer") from None
    if label == UNKNOWN_LABEL:
        if allow_unknown:
            return fields[0], label
        raise ValueError(f"{path}:{number}: label -1 means 'no known architecture' and is accepted "
                         f"only in open-set lists (such as *_test_unseen_arch.txt, read with "
                         f"allow_unknown=True); this list needs labels 0..K-1")
    if label < 0 or (class_num is not None and label >= class_num):
        bound = f"0..{class_num - 1}" if class_num is not None else ">= 0"
        raise ValueError(f"{path}:{number}: label {label} outside {bound}; "
                         f"check class_num in the config or the list")
    return fields[0], label


def write_annotations(path: str, items: Sequence[Item], with_labels: bool = True) -> None:
    """Write ``items`` to ``path`` (parent folders created), atomically."""
    with atomic_file(path, newline="\n") as handle:
        for image_path, label in items:
            if "\t" in image_path or "\n" in image_path:
                raise ValueError(f"image path {image_path!r} contains a tab or newline")
            handle.write(f"{image_path}\t{label}\n" if with_labels else f"{image_path}\n")


def group_by_label(items: Sequence[Item], class_num: int) -> List[List[str]]:
    """Return one list of paths per class; a class with no image, or a label outside
    ``0..class_num-1`` (an unknown -1 included: it has no class to train), is an error."""
    groups: List[List[str]] = [[] for _ in range(class_num)]
    for image_path, label in items:
        if not 0 <= label < class_num:
            raise ValueError(f"image {image_path!r} has label {label}, outside 0..{class_num - 1}; "
                             f"lists of unknown architectures (-1) are for testing only")
        groups[label].append(image_path)
    empty = [k for k, group in enumerate(groups) if not group]
    if empty:
        raise ValueError(f"classes {empty} have no training image; class-balanced sampling "
                         f"needs at least one image of each of the {class_num} classes")
    return groups

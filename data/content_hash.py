"""What a file or a folder holds, by content: the one notion of "these weights changed".

``file_identity`` (SHA-1 and size of a file's bytes; its path and mtime do not count, so a
copied or touched file is the same file) keys everything derived from a weights or list file:
the open-set statistics, the cross test's reusable predictions, the t-SNE feature cache.

``tree_fingerprint`` is a short fingerprint of a folder, e.g. a built toy zoo.
Zoos built from the same seed on different CPUs differ (their generators train with other
floating-point rounding), so two users' numbers can differ because their test images do. The
zoo builder records ``tree_fingerprint`` in ``manifest.json``; ``eval/cross_test.py`` and the
multi-seed tables print it, so two users can tell whether they evaluated the same images.
"""
import hashlib
import json
import os
from typing import Optional

SKIPPED = ("manifest.json",)


def file_identity(path: str) -> dict:
    """``{"sha1": hex digest of the bytes, "size": bytes}`` of a file."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"sha1": digest.hexdigest(), "size": os.path.getsize(path)}


def tree_fingerprint(folder: str) -> str:
    """``sha256:<16 hex> (<n> files)`` over every file's relative path and bytes (sorted walk;
    manifest.json and logs left out)."""
    digest = hashlib.sha256()
    count = 0
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name in SKIPPED or name.endswith(".log"):
                continue
            path = os.path.join(parent, name)
            digest.update(os.path.relpath(path, folder).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
            count += 1
    if not count:
        raise ValueError(f"no files under {folder!r} to fingerprint")
    return f"sha256:{digest.hexdigest()[:16]} ({count} files)"


def recorded_fingerprint(image_path: str, levels: int = 5) -> Optional[str]:
    """The ``fingerprint`` of the zoo manifest.json found in a parent folder of ``image_path``
    (up to ``levels`` up), or None."""
    folder = os.path.dirname(os.path.abspath(image_path))
    for _ in range(levels):
        manifest = os.path.join(folder, "manifest.json")
        if os.path.isfile(manifest):
            try:
                with open(manifest, encoding="utf-8") as handle:
                    return json.load(handle).get("fingerprint")
            except (OSError, ValueError):
                return None
        folder = os.path.dirname(folder)
    return None

"""What a finished build shows a person: per-domain comparison grids and the summary table."""
import os

from . import storage
from .audit import format_audit

COMPARISON_COLUMNS = 8


def save_comparison_grids(out: str, manifest: dict) -> list:
    """``grids/compare_{domain}.png``: the first 8 crops of ``real/{domain}`` in the top row,
    then one row per generator that reconstructs that domain (the same 8 crops), in plan order.

    Returns:
        the grid paths written, relative to ``out``.
    """
    written = []
    for domain in sorted({e["domain"] for e in manifest["sources"] if e["kind"] == "gan"}):
        real = next(e for e in manifest["sources"] if e["name"] == f"real/{domain}")
        rows = [storage.read_pngs(os.path.join(out, real["dir"]), COMPARISON_COLUMNS)]
        names = [f"input {domain}"]
        for entry in manifest["sources"]:
            if entry["kind"] == "gan" and entry.get("inputs") == f"real/{domain}":
                rows.append(storage.read_pngs(os.path.join(out, entry["dir"]), COMPARISON_COLUMNS))
                names.append(entry["name"])
        path = f"grids/compare_{domain}.png"
        storage.save_row_grid(os.path.join(out, path), rows, names)
        written.append(path)
    return written


def format_summary(manifest: dict) -> str:
    """Table of source, label, image count, PSNR and build seconds, the total, and the audit."""
    sources = manifest["sources"]
    lines = [f"{'source':<24}{'label':>6}{'images':>8}{'PSNR dB':>9}{'seconds':>10}{'cpu s':>8}"]
    for e in sources:
        quality = f"{e['psnr_db']:>9.2f}" if "psnr_db" in e else f"{'':>9}"
        lines.append(f"{e['name']:<24}{e['label']:>6}{e['images']:>8}{quality}"
                     f"{e['seconds']:>10.1f}{e['cpu_seconds']:>8.1f}")
    lines.append(f"{'total':<24}{'':>6}{sum(e['images'] for e in sources):>8}{'':>9}"
                 f"{sum(e['seconds'] for e in sources):>10.1f}{sum(e['cpu_seconds'] for e in sources):>8.1f}")
    lines.append(f"this run: {manifest['build_seconds']:.1f} s wall (cached sources are not rebuilt; "
                 "with several workers the per-source seconds overlap)")
    if "audit" in manifest:
        lines.append(format_audit(manifest["audit"]))
    return "\n".join(lines)

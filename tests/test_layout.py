"""The package layering of ARCHITECTURE.md: imports flow one way.

entry scripts -> analysis -> engine -> models / data / configs; the lower layers
never import a higher one, and entry scripts never import each other.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# package -> project packages it must not import
FORBIDDEN = {
    "configs": {"models", "data", "engine", "analysis", "eval", "visualize", "main", "DataPrepare"},
    "models": {"configs", "data", "engine", "analysis", "eval", "visualize", "main", "DataPrepare"},
    "data": {"configs", "models", "engine", "analysis", "eval", "visualize", "main", "DataPrepare"},
    "engine": {"analysis", "eval", "visualize", "main", "DataPrepare"},
    "analysis": {"eval", "visualize", "main", "DataPrepare"},
    "eval": {"eval", "visualize", "main"},
    "visualize": {"eval", "visualize", "main"},
}


def imported_roots(path: pathlib.Path) -> set:
    """Top-level names of every module ``path`` imports (absolute imports only)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    offenders = {str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
                 for path in sorted((ROOT / package).glob("*.py"))}
    offenders = {name: bad for name, bad in offenders.items() if bad}
    assert not offenders, f"imports against the layering of ARCHITECTURE.md: {offenders}"


def test_imported_roots_sees_both_import_forms(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("import engine.fit\nfrom analysis.reports import x\nfrom . import y\n", encoding="utf-8")
    assert imported_roots(source) == {"engine", "analysis"}

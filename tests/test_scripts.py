"""Shell recipes: script/run_compare.sh's method selection, script/install.sh's handling of an installed torch."""
import os

import pytest
import pathlib
import subprocess

from conftest import TINY_OVERRIDES


ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_compare(env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "script/run_compare.sh"], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_run_compare_rejects_an_unknown_method(tmp_path):
    result = run_compare({"METHODS": "DNA-Det foo", "DATA": str(tmp_path / "data"), "ZOO": str(tmp_path / "zoo")})
    assert result.returncode == 2
    assert "METHODS: unknown method 'foo'; choose from: DNA-Det no_pretrain" in result.stderr
    assert not (tmp_path / "zoo").exists()                 # refused before building anything


@pytest.mark.slow
def test_run_compare_trains_and_tables_only_the_chosen_methods(tiny_zoo, tmp_path):
    zoo, _, _ = tiny_zoo
    out, data = tmp_path / "out", tmp_path / "data"
    tiny = " ".join(TINY_OVERRIDES)
    result = run_compare({"METHODS": "no_pretrain ce_only", "ZOO": str(zoo), "DATA": str(data), "OUT": str(out),
                          "DEVICE": "cpu", "STAGE2_SET": tiny, "PRE_SET": tiny, "TAG": "t"})
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "no_pretrain" in table and "ce_only" in table
    assert "DNA-Det" not in table and "attnet" not in table
    assert not (data / "pretrain_train" / "models").exists()          # no method needed stage 1
    runs = sorted(p.name for p in (data / "toy_train" / "models" / "toy_val").iterdir())
    assert runs == ["toy", "toy_ce_only"]


def _install_with_fake_torch(tmp_path, torch_version):
    """script/install.sh with ``torch_version`` installed (None: none) and pip replaced by a
    recorder: returns (result, [requirement lines pip was asked for])."""
    site = tmp_path / "site"
    site.mkdir()
    if torch_version:
        info = site / f"torch-{torch_version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {torch_version}\n")
    log = tmp_path / "pip.log"
    fake = tmp_path / "python"
    fake.write_text(f"""#!/bin/sh
if [ "$1" = -m ]; then   # pip: record what it was asked to install, install nothing
    while [ $# -gt 0 ]; do
        if [ "$1" = -r ]; then cat "$2" >>"{log}"; shift; else echo "arg $1" >>"{log}"; fi
        shift
    done
    exit 0
fi
PYTHONPATH="{site}" exec "{os.sys.executable}" -S "$@"   # -S: only the fake site
""")
    fake.chmod(0o755)
    result = subprocess.run(["sh", "script/install.sh"], cwd=ROOT, env={**os.environ, "PYTHON": str(fake)},
                            capture_output=True, text=True, timeout=60)
    asked = log.read_text().splitlines() if log.exists() else []
    return result, [line for line in asked if line and not line.startswith(("#", "arg "))]


def test_install_keeps_a_supported_torch_build_as_it_is(tmp_path):
    result, asked = _install_with_fake_torch(tmp_path, "2.5.1+cu121")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("numpy") for line in asked)
    assert not any(line.startswith("torch") for line in asked), asked


def test_install_refuses_to_replace_a_torch_outside_the_range(tmp_path):
    result, asked = _install_with_fake_torch(tmp_path, "2.15.0")
    assert result.returncode == 1 and asked == []
    assert "installed torch 2.15.0 is outside the supported range 2.4 to 2.14.1" in result.stderr
    assert "does not replace it" in result.stderr


def test_install_on_a_fresh_python_installs_the_supported_range(tmp_path):
    result, asked = _install_with_fake_torch(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert "torch>=2.4,<=2.14.1" in asked and any(line.startswith("numpy") for line in asked)


def test_run_demo_rejects_an_unknown_option_before_doing_anything(tmp_path):
    env = {**os.environ, "ZOO": str(tmp_path / "zoo"), "DATA": str(tmp_path / "data")}
    result = subprocess.run(["bash", os.path.join(ROOT, "script", "run_demo.sh"), "--long"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown option '--long'; use --quick, --long-stage1 or nothing" in result.stderr
    assert not (tmp_path / "zoo").exists() and "install" not in result.stdout

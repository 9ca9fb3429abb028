"""Shell recipes: script/run_compare.sh's method selection."""
import os
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

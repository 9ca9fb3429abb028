"""The multi-seed runner: aggregation, Welch's test, resume, and one tiny end-to-end run."""
import hashlib
import json
import os
import shlex

import numpy as np
import pytest
from scipy import stats

from analysis import seeds
from data.content_hash import file_identity, tree_fingerprint
from conftest import TINY_OVERRIDES, load_script


run_seeds = load_script("eval", "run_seeds")


def fake_rows():
    """Hand-made runs: DNA-Det closed 90, 92, 94; no_pretrain 80, 81 (cross lists constant)."""
    rows = []
    for method, values in (("DNA-Det", (90.0, 92.0, 94.0)), ("no_pretrain", (80.0, 81.0))):
        for seed, value in enumerate(values):
            row = {"method": method, "seed": seed, "closed": value, "cross-seed": 50.0, "cross-loss": 50.0,
                   "cross-finetune": 50.0, "cross-dataset": 50.0 + seed}
            if method == "DNA-Det":
                row["energy_auroc"] = 70.0 + 10 * seed
            rows.append(row)
    return rows


def test_aggregate_mean_sd_n_and_range():
    table = seeds.aggregate(fake_rows())
    closed = table["DNA-Det"]["closed"]
    assert closed == {"n": 3, "mean": 92.0, "std": 2.0, "min": 90.0, "max": 94.0}
    assert table["no_pretrain"]["closed"]["std"] == pytest.approx(np.std([80, 81], ddof=1))
    assert table["DNA-Det"]["energy_auroc"]["mean"] == 80.0 and "energy_auroc" not in table["no_pretrain"]
    assert seeds.summary([5.0]) == {"n": 1, "mean": 5.0, "std": 0.0, "min": 5.0, "max": 5.0}


def test_welch_matches_scipy_and_its_interval_brackets_the_difference():
    a, b = [90.0, 92.0, 94.0], [80.0, 81.0, 79.0, 82.0]
    result = seeds.welch(a, b)
    assert result["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert result["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert result["low"] < result["diff"] < result["high"] and result["low"] > 0
    same = seeds.welch([50.0, 51.0, 49.0], [50.5, 49.5, 50.0])
    assert same["p"] > 0.5 and same["low"] < 0 < same["high"]
    with pytest.raises(ValueError, match="at least 2 values"):
        seeds.welch([1.0], [2.0, 3.0])


def test_markdown_says_which_claims_exceed_the_spread():
    text = seeds.markdown(fake_rows(), "python eval/run_seeds.py --tag t", "T", fingerprint="sha256:ab")
    assert "Made by: `python eval/run_seeds.py --tag t`" in text and "`sha256:ab`" in text
    assert "| DNA-Det | 3 | 92.0 ± 2.0 [90.0-94.0] |" in text
    closed = [line for line in text.splitlines() if line.startswith("| pre-training") and "| closed |" in line]
    assert len(closed) == 1 and "| yes, first better |" in closed[0]
    shifted = [line for line in text.splitlines() if line.startswith("| pre-training") and "| cross-seed |" in line]
    assert shifted and shifted[0].endswith("| no |")          # equal means: inside the spread


def test_run_row_reads_cross_test_results():
    results = {"results": [{"test": name, "acc": 0.5, "open_list": False} for name in seeds.ACCURACY_COLUMNS]
               + [{"test": "unseen-arch", "open_list": True, "acc": None,
                   "open_set": {"energy": {"auroc": 0.8, "fpr95": 0.4, "oscr": 0.7, "flagged": 0.3}}}]}
    row = seeds.run_row(results, "DNA-Det", 3)
    assert row["closed"] == 50.0 and row["energy_auroc"] == 80.0 and row["energy_fpr95"] == 40.0
    del results["results"][1]
    with pytest.raises(ValueError, match="no accuracy for cross-seed"):
        seeds.run_row(results, "DNA-Det", 3)


def test_resume_never_retrains_a_finished_seed(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    rows_dir = data / "seeds" / "t"
    rows_dir.mkdir(parents=True)
    finished = fake_rows()[0]
    (rows_dir / "DNA-Det_s0.json").write_text(json.dumps(finished))
    calls = []

    def fake_job(self, name, seed):
        calls.append((name, seed))
        row = {**fake_rows()[1], "method": name, "seed": seed, "minutes": 0.0}
        (rows_dir / f"{name}_s{seed}.json").write_text(json.dumps(row))
        return row
    monkeypatch.setattr(run_seeds.Runner, "job", fake_job)
    monkeypatch.setattr(run_seeds, "prepare_data", lambda args: None)
    monkeypatch.setattr(run_seeds, "tree_fingerprint", lambda zoo: "sha256:test")
    out = str(tmp_path / "table")
    argv = ["--methods", "DNA-Det", "--seeds", "0", "1", "--tag", "t", "--out", out, "--data", str(data)]
    assert run_seeds.main(argv) == 0
    assert calls == [("DNA-Det", 1)]                      # seed 0 was finished
    assert "1 run(s) already finished" in capsys.readouterr().out
    assert run_seeds.main(argv) == 0 and calls == [("DNA-Det", 1)]   # nothing left to do
    table = json.loads(open(out + ".json").read())
    assert table["aggregate"]["DNA-Det"]["closed"]["n"] == 2 and table["fingerprint"] == "sha256:test"
    assert open(out + ".csv").readline().startswith("# python eval/run_seeds.py")


def test_rows_record_the_code_and_a_resume_names_runs_of_other_code(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    rows_dir = data / "seeds" / "t"
    rows_dir.mkdir(parents=True)
    (rows_dir / "DNA-Det_s0.json").write_text(json.dumps({**fake_rows()[0], "code": "old1234"}))
    (rows_dir / "DNA-Det_s1.json").write_text(json.dumps(fake_rows()[1]))          # no version: older rows
    assert run_seeds.code_version(str(tmp_path)) == "unknown"                              # not a git checkout
    monkeypatch.setattr(run_seeds, "code_version", lambda root=None: "new5678")
    commands = _fake_evaluation(monkeypatch)
    monkeypatch.setattr(run_seeds.Runner, "train", lambda self, *args: str(tmp_path / "model.pth"))
    out = str(tmp_path / "table")
    assert run_seeds.main(["--methods", "DNA-Det", "--seeds", "0", "1", "2", "--tag", "t", "--out", out,
                           "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert ("not retrained: 1 by old1234, 1 by a version that did not record itself (before 2026-12-05); "
            "this code is new5678") in printed
    assert json.loads((rows_dir / "DNA-Det_s2.json").read_text())["code"] == "new5678"
    assert json.loads((rows_dir / "DNA-Det_s0.json").read_text())["code"] == "old1234"   # kept as it was
    assert len([c for c in commands if c[1] == "eval/cross_test.py"]) == 1                # seed 2 only
    text = open(out + ".md").read()
    assert "Code that wrote the rows (git describe): `new5678` (1 run), `old1234` (1 run)" in text
    assert "code" not in json.loads(open(out + ".json").read())["aggregate"]["DNA-Det"]   # not a number column


@pytest.mark.slow
def test_a_tiny_end_to_end_run_with_stage_1(tiny_zoo, tmp_path, capsys):
    zoo, _, _ = tiny_zoo
    data, out = tmp_path / "data", str(tmp_path / "table")
    argv = ["--methods", "DNA-Det", "--seeds", "0", "--tag", "tiny", "--out", out,
            "--zoo", str(zoo), "--data", str(data), "--device", "cpu",
            "--set", *TINY_OVERRIDES, "--pre_set", *TINY_OVERRIDES, "class_num=170"]
    assert run_seeds.main(argv) == 0, capsys.readouterr()
    rows = {r["method"]: r for r in seeds.read_rows(str(data / "seeds" / "tiny"))}
    assert set(rows) == {"DNA-Det"}
    for row in rows.values():
        assert all(0 <= row[c] <= 100 for c in seeds.ACCURACY_COLUMNS)
        assert any(key.endswith("_auroc") for key in row)
        # per unseen family, from the saved open_set.csv files
        assert {"msp_auroc@stylegan2", "msp_auroc@resizeblur", "knn_auroc@resizeblur", "vim_oscr@stylegan2"} <= set(row)
    stage1 = data / "pretrain_train" / "models" / "pretrain_val" / "toy_pretrain" / "run_tiny_s0"
    assert (stage1 / "model.pth").exists() and (stage1 / "finished").exists()
    table = open(out + ".md").read()
    assert "| DNA-Det | 1 |" in table
    manifest = json.load(open(zoo / "manifest.json"))
    assert manifest["fingerprint"] == tree_fingerprint(str(zoo)) and f"`{manifest['fingerprint']}`" in table
    cross = open(data / "seeds" / "tiny" / "DNA-Det_s0_cross_test" / "results.md").read()
    assert f"Toy zoo fingerprint (its manifest.json; zoos built on other CPUs differ): {manifest['fingerprint']}" in cross
    printed = capsys.readouterr().out
    assert "DNA-Det seed 0: done in" in printed and "tables:" in printed
    row_file = data / "seeds" / "tiny" / "DNA-Det_s0.json"
    stripped = {k: v for k, v in json.loads(row_file.read_text()).items() if "@" not in k}
    row_file.write_text(json.dumps(stripped))
    assert run_seeds.main(argv + ["--rescore"]) == 0                # nothing retrained, rows recomputed
    assert "msp_auroc@resizeblur" in json.loads(row_file.read_text())
    assert "0 to go" in capsys.readouterr().out
    checkpoint = data / "toy_train" / "models" / "toy_val" / "toy" / "run_tiny_DNA-Det_s0" / "checkpoint.pth"
    trained_at = checkpoint.stat().st_mtime_ns
    row_file.write_text(json.dumps({k: v for k, v in json.loads(row_file.read_text()).items() if "knn" not in k}))
    assert run_seeds.main(argv + ["--reevaluate"]) == 0               # refit + cross tests, no training
    assert "knn_auroc@resizeblur" in json.loads(row_file.read_text())
    assert checkpoint.stat().st_mtime_ns == trained_at
    assert "DNA-Det seed 0: re-evaluated" in capsys.readouterr().out


def test_tree_fingerprint_changes_with_any_byte(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"123")
    (tmp_path / "manifest.json").write_text("{}")
    first = tree_fingerprint(str(tmp_path))
    assert first.startswith("sha256:") and first.endswith("(1 files)")
    (tmp_path / "manifest.json").write_text('{"changed": 1}')      # the manifest itself is left out
    assert tree_fingerprint(str(tmp_path)) == first
    (tmp_path / "a" / "x.png").write_bytes(b"124")
    assert tree_fingerprint(str(tmp_path)) != first
    with pytest.raises(ValueError, match="no files"):
        tree_fingerprint(str(tmp_path / "a" / "missing"))


def test_seed_spread_places_a_run_against_the_table(tmp_path, capsys):
    spread = load_script("eval", "seed_spread")
    table = str(tmp_path / "t")
    seeds.write_tables(fake_rows(), table, "python eval/run_seeds.py", "T")
    results = {"results": [{"test": name, "acc": 0.5, "open_list": False} for name in seeds.ACCURACY_COLUMNS]}
    results["results"][0]["acc"] = 0.93
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert spread.main(["--results", str(tmp_path / "results.json"), "--table", table + ".json"]) == 0
    out = capsys.readouterr().out
    assert "closed                        93.0   seeds: n 3, mean 92.0 ± 2.0, range 90.0-94.0 (inside the range)" in out
    assert "cross-dataset                 50.0   seeds: n 3, mean 51.0 ± 1.0, range 50.0-52.0 (inside" in out
    assert "cross-seed                    50.0" in out and "energy_auroc" not in out   # the run has none
    assert spread.main(["--results", "x.json", "--table", str(tmp_path / "none.json")]) == 0
    assert "no multi-seed table" in capsys.readouterr().out


def test_seed_spread_compares_a_run_with_the_table_of_its_precision(tmp_path, capsys):
    spread = load_script("eval", "seed_spread")
    bf16, fp32 = str(tmp_path / "bf16"), str(tmp_path / "fp32")
    seeds.write_tables(fake_rows(), bf16, "python eval/run_seeds.py", "bf16 runs")
    seeds.write_tables([{**r, "closed": r["closed"] + 5} for r in fake_rows()], fp32, "python eval/run_seeds.py", "fp32")
    run = tmp_path / "run"
    (run / "cross_test").mkdir(parents=True)
    results = run / "cross_test" / "results.json"
    results.write_text(json.dumps({"results": [{"test": name, "acc": 0.95, "open_list": False}
                                               for name in seeds.ACCURACY_COLUMNS]}))
    argv = ["--results", str(results), "--table", fp32 + ".json", "--bf16_table", bf16 + ".json"]
    assert spread.main(argv) == 0                               # no config.json: the main table
    out = capsys.readouterr().out
    assert f"({fp32}.json)" in out and "note:" not in out
    (run / "config.json").write_text(json.dumps({"amp_resolved": "fp32"}))
    assert spread.main(argv) == 0
    out = capsys.readouterr().out
    assert f"({fp32}.json)" in out and "mean 97.0 ± 2.0" in out   # the fp32 table's closed-set row
    (run / "config.json").write_text(json.dumps({"amp_resolved": "bf16"}))
    assert spread.main(argv) == 0
    out = capsys.readouterr().out
    assert f"({bf16}.json)" in out and "mean 92.0 ± 2.0" in out and "note:" not in out
    assert spread.main(argv[:4]) == 0                           # no bf16 table: compared, with a note
    out = capsys.readouterr().out
    assert "this run trained in bf16; the table's runs trained in fp32" in out and f"({fp32}.json)" in out
    argv = ["--results", str(results), "--table", bf16 + ".json", "--table_precision", "bf16"]
    assert spread.main(argv) == 0                               # a bf16 table given as the main one
    out = capsys.readouterr().out
    assert f"({bf16}.json)" in out and "note:" not in out


def test_open_set_score_is_selected_on_validation_unknowns_only():
    """'knn' is best on the validation family, 'energy' on the test family: the selection must
    take knn (it never looks at the test family) and report its test numbers next to MSP's."""
    rows = []
    for seed in range(3):
        row = {"method": "DNA-Det", "seed": seed, **{c: 90.0 for c in seeds.ACCURACY_COLUMNS}}
        for score, val, test in (("msp", 60, 55), ("energy", 70, 99), ("knn", 90, 65 + seed)):
            row.update({f"{score}_auroc@stylegan2": val + seed, f"{score}_auroc@resizeblur": test,
                        f"{score}_fpr95@resizeblur": 50.0, f"{score}_oscr@resizeblur": 40.0})
        rows.append(row)
    chosen = seeds.select_open_set(rows, "DNA-Det")
    assert chosen["selected"] == "knn" and chosen["val_auroc"]["knn"] == 91.0
    assert chosen["test"]["knn"]["auroc"]["mean"] == 66.0 and chosen["test"]["msp"]["auroc"]["mean"] == 55.0
    assert chosen["above_msp_every_seed"] is True
    text = seeds.markdown(rows, "cmd", "T")
    assert "| DNA-Det | 3 | knn (91.0) | 66.0 ± 1.0 [65.0-67.0] |" in text
    assert seeds.select_open_set([{"method": "x", "seed": 0}], "x") is None


def test_a_given_stage_1_replaces_the_per_seed_stage_1(tmp_path, monkeypatch):
    stage1 = tmp_path / "converged.pth"
    stage1.write_bytes(b"weights")
    args = run_seeds.parse_args(["--tag", "t", "--out", str(tmp_path / "o"), "--data", str(tmp_path),
                                 "--stage1", str(stage1)])
    runner = run_seeds.Runner(args, threads=1)
    os.makedirs(runner.rows_dir)
    commands = []
    monkeypatch.setattr(run_seeds.Runner, "call", lambda self, command, log: commands.append(command))
    monkeypatch.setattr(run_seeds.Runner, "evaluate", lambda self, name, seed, weights, log: {
        **fake_rows()[0], "method": name, "seed": seed})
    runner.job("DNA-Det", 2)
    runner.job("no_pretrain", 2)
    assert len(commands) == 2 and all("--pretrain" not in command for command in commands)   # no stage 1
    assert commands[0][commands[0].index("--pretrain_model_path") + 1] == str(stage1)
    assert "--pretrain_model_path" not in commands[1]


def test_stage_2_overrides_reach_the_evaluation_commands(tmp_path, monkeypatch):
    args = run_seeds.parse_args(["--tag", "t", "--out", str(tmp_path / "o"), "--data", str(tmp_path),
                                 "--set", "amp=off"])
    runner = run_seeds.Runner(args, threads=1)
    os.makedirs(runner.rows_dir)
    commands = []
    monkeypatch.setattr(run_seeds.Runner, "call", lambda self, command, log: commands.append(command))
    monkeypatch.setattr(run_seeds, "run_row", lambda results, name, seed: {**fake_rows()[0], "seed": seed})
    monkeypatch.setattr(run_seeds.json, "load", lambda handle: {})
    out_dir = tmp_path / "seeds" / "t" / "dct_s0_cross_test"
    out_dir.mkdir(parents=True)
    (out_dir / "results.json").write_text("{}")
    runner.reevaluate("dct", 0, 1.0)
    assert [command[1] for command in commands] == ["eval/fit_open_set.py", "eval/cross_test.py"]
    assert all(command[-2:] == ["--set", "amp=off"] for command in commands)


def _fake_evaluation(monkeypatch) -> list:
    """run_seeds with its commands recorded instead of run (cross_test writes an empty
    results.json), no zoo preparation and a fake row per run; returns the command list."""
    commands = []

    def fake_call(self, command, log):
        commands.append(command)
        if command[1] == "eval/cross_test.py":
            out = command[command.index("--out_dir") + 1]
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "results.json"), "w") as handle:
                json.dump({}, handle)
    monkeypatch.setattr(run_seeds, "prepare_data", lambda args: None)
    monkeypatch.setattr(run_seeds, "tree_fingerprint", lambda zoo: "sha256:x")
    monkeypatch.setattr(run_seeds.Runner, "call", fake_call)
    monkeypatch.setattr(run_seeds, "run_row", lambda results, name, seed: {**fake_rows()[0], "method": name,
                                                                           "seed": seed})
    return commands


def test_weights_of_another_tag_are_evaluated_from_a_copy_without_training(tmp_path, monkeypatch, capsys):
    source = tmp_path / "toy_train" / "models" / "toy_val" / "toy" / "run_src_DNA-Det_s1"
    source.mkdir(parents=True)
    (source / "model.pth").write_bytes(b"bf16-trained weights")
    (source / "model.json").write_text("{}")
    _row_folder(tmp_path / "seeds" / "src", "DNA-Det", [90.0, 91.0, 92.0])      # rows of seeds 0-2
    commands = _fake_evaluation(monkeypatch)
    argv = ["--methods", "DNA-Det", "--seeds", "1", "2", "--tag", "fp32eval", "--weights_of", "src", "--set",
            "amp=off", "--out", str(tmp_path / "table"), "--data", str(tmp_path)]
    assert run_seeds.main(argv) == 1                   # seed 2 has a row but no weights: reported, counted
    out = capsys.readouterr().out
    assert "DNA-Det seed 2: FAILED" in out and "run_src_DNA-Det_s2/model.pth: no such file" in out
    copy = tmp_path / "toy_train" / "models" / "toy_val" / "toy" / "run_fp32eval_DNA-Det_s1"
    assert (copy / "model.pth").read_bytes() == b"bf16-trained weights" and (copy / "model.json").exists()
    assert [command[1] for command in commands] == ["eval/fit_open_set.py", "eval/cross_test.py"]
    assert all(command[-2:] == ["--set", "amp=off"] and str(copy / "model.pth") in " ".join(command)
               for command in commands)                 # the copy is evaluated, in fp32; nothing trained
    assert sorted(os.listdir(source)) == ["model.json", "model.pth"]      # the source run is untouched
    row = json.loads((tmp_path / "seeds" / "fp32eval" / "DNA-Det_s1.json").read_text())
    assert row["seed"] == 1 and (tmp_path / "table.md").exists()
    commands.clear()
    run_seeds.main(argv)                                   # resumes: seed 1 is not evaluated again
    assert all("run_fp32eval_DNA-Det_s1" not in " ".join(command) for command in commands)


def test_weights_of_refuses_its_own_tag_and_an_empty_source(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        run_seeds.parse_args(["--tag", "t", "--weights_of", "t", "--out", "o"])
    assert "give a different --tag" in capsys.readouterr().err
    monkeypatch.setattr(run_seeds, "prepare_data", lambda args: None)
    monkeypatch.setattr(run_seeds, "tree_fingerprint", lambda zoo: "sha256:x")
    assert run_seeds.main(["--tag", "t", "--weights_of", "none", "--out", str(tmp_path / "o"),
                           "--data", str(tmp_path)]) == 1
    assert "tag none has no finished run" in capsys.readouterr().err


def test_a_missing_stage_1_file_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_seeds.parse_args(["--tag", "t", "--out", "o", "--stage1", str(tmp_path / "none.pth")])
    assert "none.pth: no such file" in capsys.readouterr().err


def test_a_zoo_built_with_another_seed_is_refused(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"zoo_seed": 0, "audit": {}}))
    calls = []
    monkeypatch.setattr(run_seeds.subprocess, "run", lambda command, **k: calls.append(command[1]))
    run_seeds.prepare_data(run_seeds.parse_args(["--tag", "t", "--out", "o", "--zoo", str(zoo)]))
    assert calls == ["DataPrepare/generate_.py"] * 2                        # a finished zoo is not rebuilt
    (zoo / "manifest.json").write_text(json.dumps({"zoo_seed": 0}))          # a build that stopped early
    calls.clear()
    run_seeds.prepare_data(run_seeds.parse_args(["--tag", "t", "--out", "o", "--zoo", str(zoo)]))
    assert calls[0] == "DataPrepare/make_toy_zoo.py"                         # resumed
    with pytest.raises(ValueError, match="built with zoo seed 0, not --zoo_seed 1"):
        run_seeds.prepare_data(run_seeds.parse_args(["--tag", "t", "--out", "o", "--zoo", str(zoo),
                                                     "--zoo_seed", "1"]))


def test_a_standard_zoo_is_widened_when_wide_cross_tests_are_asked(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"zoo_seed": 0, "audit": {}}))
    calls = []
    monkeypatch.setattr(run_seeds.subprocess, "run", lambda command, **k: calls.append(command[1:]))
    run_seeds.prepare_data(run_seeds.parse_args(["--tag", "t", "--out", "o", "--zoo", str(zoo),
                                                 "--cross_tests", "wide"]))
    assert calls[0][0] == "DataPrepare/make_toy_zoo.py" and calls[0][-2:] == ["--cross_tests", "wide"]
    (zoo / "manifest.json").write_text(json.dumps({"zoo_seed": 0, "audit": {}, "cross_tests": "wide"}))
    calls.clear()
    run_seeds.prepare_data(run_seeds.parse_args(["--tag", "t", "--out", "o", "--zoo", str(zoo),
                                                 "--cross_tests", "wide"]))
    assert [call[0] for call in calls] == ["DataPrepare/generate_.py"] * 2   # already wide: lists only


def test_weights_data_reads_the_source_runs_from_another_data_folder(tmp_path, monkeypatch, capsys):
    other = tmp_path / "standard"
    source = other / "toy_train" / "models" / "toy_val" / "toy_dct" / "run_main_dct_s0"
    source.mkdir(parents=True)
    (source / "model.pth").write_bytes(b"weights trained on the standard zoo")
    _row_folder(other / "seeds" / "main", "dct", [80.0])
    commands = _fake_evaluation(monkeypatch)
    wide = tmp_path / "wide"
    argv = ["--methods", "dct", "--seeds", "0", "--tag", "wide", "--weights_of", "main", "--weights_data",
            str(other), "--data", str(wide), "--out", str(tmp_path / "table")]
    assert run_seeds.main(argv) == 0
    copy = wide / "toy_train" / "models" / "toy_val" / "toy_dct" / "run_wide_dct_s0" / "model.pth"
    assert copy.read_bytes() == b"weights trained on the standard zoo"
    lists = [command[command.index("--test_data_paths") + 1] for command in commands if "--test_data_paths" in command]
    assert lists and all(path.startswith(str(wide)) for path in lists)    # evaluated on --data's lists
    assert (wide / "seeds" / "wide" / "dct_s0.json").exists()
    with pytest.raises(SystemExit):
        run_seeds.parse_args(["--tag", "t", "--out", "o", "--weights_data", str(other)])
    assert "give --weights_of too" in capsys.readouterr().err


seed_table = load_script("eval", "seed_table")


def _row_folder(folder, method, values):
    folder.mkdir(parents=True, exist_ok=True)
    for seed, value in enumerate(values):
        row = {"method": method, "seed": seed, **{c: value for c in seeds.ACCURACY_COLUMNS}}
        (folder / f"{method}_s{seed}.json").write_text(json.dumps(row))


def test_seed_table_relabels_rows_of_several_tags_and_tests_the_claims(tmp_path, capsys):
    _row_folder(tmp_path / "main", "DNA-Det", [80.0, 82.0, 84.0])
    _row_folder(tmp_path / "main", "no_pretrain", [60.0, 70.0, 65.0])
    _row_folder(tmp_path / "conv", "DNA-Det", [90.0, 91.0, 92.0])
    out = str(tmp_path / "table")
    argv = ["--rows", f"demo={tmp_path / 'main'}:DNA-Det", f"scratch={tmp_path / 'main'}:no_pretrain",
            f"converged={tmp_path / 'conv'}:DNA-Det", "--claim", "converged:demo", "--out", out, "--title", "T"]
    assert seed_table.main(argv) == 0
    table = json.loads(open(out + ".json").read())
    assert table["aggregate"]["converged"]["closed"] == {"n": 3, "mean": 91.0, "std": 1.0, "min": 90.0, "max": 92.0}
    assert table["aggregate"]["scratch"]["closed"]["mean"] == 65.0
    (claim,) = [c for c in table["claims"] if c["column"] == "closed"]
    assert (claim["better"], claim["other"], claim["diff"]) == ("converged", "demo", 9.0)
    assert claim["p"] == pytest.approx(stats.ttest_ind([90, 91, 92], [80, 82, 84], equal_var=False).pvalue)
    assert "| difference (converged vs demo, n 3/3) | closed | +9.0 |" in open(out + ".md").read()


def test_the_made_by_line_runs_as_written(tmp_path):
    """A title with spaces and parentheses is quoted: the line parses back to the same arguments."""
    _row_folder(tmp_path / "main", "DNA-Det", [80.0, 82.0])
    out = str(tmp_path / "table")
    argv = ["--rows", f"demo={tmp_path / 'main'}:DNA-Det", "--out", out, "--title", "bf16 (amp=bf16) runs"]
    assert seed_table.main(argv) == 0
    made_by = [line for line in open(out + ".md").read().splitlines() if line.startswith("Made by: `")][0]
    assert shlex.split(made_by[len("Made by: `"):-1]) == ["python", "eval/seed_table.py", *argv]


def test_seed_table_groups_give_the_spread_between_and_within(tmp_path):
    _row_folder(tmp_path / "z0", "DNA-Det", [80.0, 82.0, 84.0])   # mean 82, sd 2
    _row_folder(tmp_path / "z1", "DNA-Det", [60.0, 64.0])         # mean 62, sd 2.83
    out = str(tmp_path / "table")
    assert seed_table.main(["--rows", f"DNA-Det@zoo0={tmp_path / 'z0'}:DNA-Det",
                            f"DNA-Det@zoo1={tmp_path / 'z1'}:DNA-Det", "--out", out, "--title", "T"]) == 0
    spread = json.loads(open(out + ".json").read())["between_within"]["closed"]["DNA-Det"]
    assert spread["between_sd"] == pytest.approx(np.std([82.0, 62.0], ddof=1))
    assert spread["within_sd"] == pytest.approx(np.sqrt((2 * 4.0 + 1 * 8.0) / 3))
    assert spread["anova_p"] == pytest.approx(stats.f_oneway([80, 82, 84], [60, 64]).pvalue)
    assert "| DNA-Det | closed | zoo0 82.0 (n 3), zoo1 62.0 (n 2) | 14.1 | 2.3 |" in open(out + ".md").read()


def test_seed_table_errors_name_the_bad_spec(tmp_path, capsys):
    _row_folder(tmp_path / "main", "DNA-Det", [80.0, 82.0])
    out = str(tmp_path / "t")
    assert seed_table.main(["--rows", "no-colon", "--out", out, "--title", "T"]) == 1
    assert "expected LABEL=FOLDER:METHOD" in capsys.readouterr().err
    assert seed_table.main(["--rows", f"a={tmp_path / 'main'}:dct", "--out", out, "--title", "T"]) == 1
    assert "no finished run of dct" in capsys.readouterr().err
    assert seed_table.main(["--rows", f"a={tmp_path / 'main'}:DNA-Det", "--claim", "a:b", "--out", out,
                            "--title", "T"]) == 1
    assert "both sides must be --rows labels" in capsys.readouterr().err
    assert not os.path.exists(out + ".md")


def test_paired_test_matches_seeds_and_agrees_with_the_differences_by_hand(tmp_path, capsys):
    _row_folder(tmp_path / "bf16", "DNA-Det", [90.0, 92.0, 95.0])
    _row_folder(tmp_path / "fp32eval", "DNA-Det", [91.0, 92.5, 95.5, 99.0])     # seed 3 has no partner
    out = str(tmp_path / "t")
    assert seed_table.main(["--rows", f"bf16={tmp_path / 'bf16'}:DNA-Det", f"fp32={tmp_path / 'fp32eval'}:DNA-Det",
                            "--paired", "fp32:bf16", "--out", out, "--title", "T"]) == 0
    record = json.loads(open(out + ".json").read())
    closed = next(r for r in record["paired"] if r["column"] == "closed")
    d = np.array([1.0, 0.5, 0.5])                                             # per-seed differences
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert closed["seeds"] == [0, 1, 2] and closed["diff"] == pytest.approx(d.mean())
    assert closed["p"] == pytest.approx(2 * stats.t.sf(d.mean() / (d.std(ddof=1) / np.sqrt(3)), 2))
    assert closed["low"] == pytest.approx(d.mean() - half) and closed["high"] == pytest.approx(d.mean() + half)
    assert "| fp32 - bf16 | closed | 3 | +0.67 | 0.29 |" in open(out + ".md").read()
    assert seed_table.main(["--rows", f"bf16={tmp_path / 'bf16'}:DNA-Det", "--paired", "bf16:x", "--out", out,
                            "--title", "T"]) == 1
    assert "--paired 'bf16:x': both sides must be --rows labels" in capsys.readouterr().err
    assert seeds.paired([{"method": "a", "seed": 0, "closed": 1.0}, {"method": "b", "seed": 0, "closed": 2.0}],
                        "a", "b", "closed") is None                           # one matching seed: no test


def test_file_identity_is_the_content_not_the_path_or_time(tmp_path):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    first.write_bytes(b"weights")
    second.write_bytes(b"weights")
    identity = file_identity(str(first))
    assert identity == {"sha1": hashlib.sha1(b"weights").hexdigest(), "size": 7}
    os.utime(first, (1, 1))
    assert file_identity(str(first)) == identity == file_identity(str(second))
    second.write_bytes(b"weightz")
    assert file_identity(str(second)) != identity

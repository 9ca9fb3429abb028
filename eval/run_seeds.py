"""Train and evaluate methods over several seeds on the toy zoo; write the tables with their spread.

    python eval/run_seeds.py --methods DNA-Det no_pretrain --seeds 0 1 2 3 4 \
        --tag main --out docs/results/seeds_main [--parallel 2] [--set amp=off] [--pre_set ...]
        [--zoo toy_zoo_s1 --zoo_seed 1 --data toy_data_s1] [--stage1 RUN/model.pth]

For each method and seed: stage 1 (``toy_pretrain``, seed s, shared by every method of seed s
that starts from it), stage 2 (the method's config, seed s), then ``eval/cross_test.py`` on every
toy list (closed, four cross tests, unseen architectures). A finished run leaves
``DATA/seeds/TAG/<method>_s<seed>.json`` and is never trained again; an interrupted one resumes
from its checkpoint. ``--parallel 2`` runs two trainings side by side, each with
cores / 2 threads. One progress line per run. At the end (and after every finished run) the
tables ``OUT.md`` (mean ± sd [min-max], Welch's t-tests of the paper's claims, per-seed rows),
``OUT.csv`` and ``OUT.json`` are rewritten from every finished run of the tag.
``--zoo_seed`` builds (or checks) the zoo with another seed, for the spread between zoos;
``--stage1`` starts every stage-1 method from one given stage-1 model (e.g. a converged one).
``--weights_of SRC`` trains nothing: it evaluates the finished runs of tag SRC again under this
call's ``--set`` (e.g. bf16-trained weights evaluated in fp32), each from a copy of its weights
in this tag's own run directory, so SRC's files and rows are left as they are; with
``--weights_data`` SRC's runs are read from another data folder (e.g. runs trained on the
standard zoo, evaluated on the lists of its ``--cross_tests wide`` copy).
``--cross_tests wide`` builds (or widens) the zoo with 9 more cross-seed and cross-loss
generators (DataPrepare/make_toy_zoo.py).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from analysis.seeds import (ACCURACY_COLUMNS, LISTS, METHOD_NAMES, code_versions, method, read_rows, run_row,
                            write_tables)
from analysis.reports import command_line
from DataPrepare.toy_zoo.sources import manifest_cross_tests
from data.content_hash import tree_fingerprint
from data.atomic import atomic_file, atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=METHOD_NAMES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--tag", required=True, help="names the runs (run ids) and DATA/seeds/TAG/")
    parser.add_argument("--out", required=True, help="table stem: writes OUT.md, OUT.csv, OUT.json")
    parser.add_argument("--title", default=None, help="heading of OUT.md (default: the tag)")
    parser.add_argument("--zoo", default="toy_zoo", help="toy zoo folder (built if it has no manifest.json)")
    parser.add_argument("--zoo_seed", type=int, default=0,
                        help="seed the zoo is built with (an existing zoo must have been built with it)")
    parser.add_argument("--stage1", default=None, metavar="MODEL_PTH",
                        help="one finished stage-1 model.pth that every method starting from stage 1 uses, "
                             "instead of training a stage 1 per seed")
    parser.add_argument("--cross_tests", default="standard", choices=("standard", "wide"),
                        help="the zoo's cross tests (wide: every family in cross-seed and cross-loss)")
    parser.add_argument("--data", default="toy_data", help="lists and run directories")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=1, help="trainings side by side (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per training (default: cores / --parallel)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="stage-2 overrides")
    parser.add_argument("--pre_set", nargs="*", default=[], metavar="KEY=VALUE", help="stage-1 overrides")
    parser.add_argument("--rescore", action="store_true",
                        help="recompute the rows of finished runs from their saved cross-test outputs (no training)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate the finished runs of --methods and --seeds again with the current code "
                             "(open-set statistics refitted, every cross test; no training)")
    parser.add_argument("--weights_of", default=None, metavar="TAG",
                        help="no training: evaluate the finished runs of tag TAG (same --data) under this call's "
                             "--set, from copies of their weights; rows go to --tag")
    parser.add_argument("--weights_data", default=None, metavar="DATA",
                        help="with --weights_of: the data folder holding TAG's runs and rows (default --data)")
    args = parser.parse_args(argv)
    if args.parallel < 1 or min(args.seeds) < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--parallel and --threads must be >= 1 and seeds >= 0")
    if args.stage1 and not os.path.isfile(args.stage1):
        parser.error(f"--stage1 {args.stage1}: no such file; give a stage-1 run's model.pth")
    if args.weights_of and (args.weights_of == args.tag or args.reevaluate or args.rescore or args.stage1):
        parser.error("--weights_of TAG evaluates another tag's runs: give a different --tag, "
                     "without --reevaluate, --rescore or --stage1")
    if args.weights_data and not args.weights_of:
        parser.error("--weights_data names where --weights_of's runs are; give --weights_of too")
    return args


def code_version(root: str = ROOT) -> str:
    """``git describe --always --dirty`` of the checkout at ``root``, or "unknown" outside git."""
    try:
        done = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def other_code_note(rows: list, current: str):
    """A line naming the finished runs made by another code version than ``current`` (which a
    resume does not retrain), or None when every run that records its version matches."""
    versions = code_versions(rows)
    other = {version: count for version, count in versions.items() if version != current}
    unrecorded = sum(1 for row in rows if not row.get("code"))
    if not other and not unrecorded:
        return None
    parts = [f"{count} by {version}" for version, count in other.items()]
    if unrecorded:
        parts.append(f"{unrecorded} by a version that did not record itself (before 2026-12-05)")
    return (f"note: finished runs kept as they are, not retrained: {', '.join(parts)}; this code is {current}. "
            f"If a change since then moves numbers, run them again under a new --tag")


class Runner:
    """Runs the jobs' commands, one log per run, and serialises stage 1 per seed."""

    def __init__(self, args, threads: int):
        self.args, self.threads = args, threads
        self.rows_dir = os.path.join(args.data, "seeds", args.tag)
        self.stage1_locks = {seed: threading.Lock() for seed in args.seeds}
        self.print_lock = threading.Lock()
        self.fingerprint = ""
        self.command = command_line("eval/run_seeds.py")
        self.code = code_version()

    def write_tables(self) -> bool:
        """The tables from every finished run of the tag (False when there is none yet)."""
        with self.print_lock:
            rows = read_rows(self.rows_dir)
            if rows:
                write_tables(rows, self.args.out, self.command, self.args.title or f"Multi-seed results: "
                             f"{self.args.tag}", self.fingerprint)
            return bool(rows)

    def say(self, text: str) -> None:
        with self.print_lock:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def call(self, command: list, log: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(command)}\n")
            handle.flush()
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command[:3])} ... failed (exit {done.returncode}); see {log}")

    def run_dir(self, config: str, run_id: str, collections: tuple = ("toy_train", "toy_val"), data: str = None) -> str:
        return os.path.join(data or self.args.data, collections[0], "models", collections[1], config, f"run_{run_id}")

    def save_row(self, row: dict) -> dict:
        row = {**row, "code": self.code}
        with atomic_file(os.path.join(self.rows_dir, f"{row['method']}_s{row['seed']}.json")) as handle:
            json.dump(row, handle, indent=1)
        return row

    def train(self, config: str, run_id: str, collections: tuple, seed: int, sets: list, extra: list, log: str):
        run_dir = self.run_dir(config, run_id, collections)
        if os.path.exists(os.path.join(run_dir, "finished")):
            return os.path.join(run_dir, "model.pth")
        resume = ["--resume"] if os.path.exists(os.path.join(run_dir, "checkpoint.pth")) else []
        self.call([sys.executable, "main.py", "--data_path", self.args.data, "--train_collection", collections[0],
                   "--val_collection", collections[1], "--config_name", config, "--run_id", run_id,
                   "--device", self.args.device, *resume, *extra, "--set", f"seed={seed}", *sets], log)
        with atomic_file(os.path.join(run_dir, "finished")) as handle:
            handle.write("trained to the end by eval/run_seeds.py\n")
        return os.path.join(run_dir, "model.pth")

    def job(self, name: str, seed: int) -> dict:
        """Train (stage 1 if needed, stage 2), evaluate, and save the run's row."""
        spec, tag = method(name), self.args.tag
        log = os.path.join(self.rows_dir, f"{name}_s{seed}.log")
        started = time.time()
        self.say(f"{name} seed {seed}: training (log {log})")
        extra = []
        if spec.stage1 and self.args.stage1:
            extra = ["--pretrain_model_path", self.args.stage1]
        elif spec.stage1:
            with self.stage1_locks[seed]:
                pre = self.train("toy_pretrain", f"{tag}_s{seed}", ("pretrain_train", "pretrain_val"), seed,
                                 self.args.pre_set, ["--pretrain"], log)
            extra = ["--pretrain_model_path", pre]
        weights = self.train(spec.config, f"{tag}_{name}_s{seed}", ("toy_train", "toy_val"), seed,
                             self.args.set, extra, log)
        row = self.evaluate(name, seed, weights, log)
        return self.save_row({**row, "minutes": round((time.time() - started) / 60, 2)})

    def evaluate(self, name: str, seed: int, weights: str, log: str) -> dict:
        """``eval/cross_test.py`` on every toy list; the run's row."""
        lists = os.path.join(self.args.data, "toy_test", "annotations")
        out_dir = os.path.join(self.rows_dir, f"{name}_s{seed}_cross_test")
        self.call([sys.executable, "eval/cross_test.py", "--config_name", method(name).config,
                   "--device", self.args.device, "--methods", f"{self.args.tag}_{name}_s{seed}={weights}",
                   "--out_dir", out_dir, "--test_data_paths", *[os.path.join(lists, file) for _, file in LISTS],
                   *self.eval_set()], log)
        with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as handle:
            return run_row(json.load(handle), name, seed)

    def eval_set(self) -> list:
        """The stage-2 ``--set`` overrides for the evaluation commands too (e.g. ``amp=off``: a run
        trained in fp32 is evaluated in fp32)."""
        return ["--set", *self.args.set] if self.args.set else []

    def reevaluate(self, name: str, seed: int, minutes) -> dict:
        """A finished run evaluated again with the current code: open-set statistics refitted
        (on the run's own training and validation lists), cross tests, row. No training."""
        log = os.path.join(self.rows_dir, f"{name}_s{seed}.log")
        weights = os.path.join(self.run_dir(method(name).config, f"{self.args.tag}_{name}_s{seed}"), "model.pth")
        lists = {split: os.path.join(self.args.data, f"toy_{split}", "annotations", f"toy_{split}.txt")
                 for split in ("train", "val")}
        self.call([sys.executable, "eval/fit_open_set.py", "--model_path", weights, "--config_name",
                   method(name).config, "--device", self.args.device, "--train_data_path", lists["train"],
                   "--val_data_path", lists["val"], *self.eval_set()], log)
        return self.save_row({**self.evaluate(name, seed, weights, log), "minutes": minutes})

    def evaluate_weights_of(self, name: str, seed: int, minutes) -> dict:
        """Copy the weights of tag ``--weights_of``'s run (``model.pth`` and its ``model.json``)
        into this tag's run directory, then ``reevaluate`` them there under this call's ``--set``."""
        config = method(name).config
        source = self.run_dir(config, f"{self.args.weights_of}_{name}_s{seed}", data=self.args.weights_data)
        target = self.run_dir(config, f"{self.args.tag}_{name}_s{seed}")
        if not os.path.isfile(os.path.join(source, "model.pth")):
            raise ValueError(f"{source}/model.pth: no such file; tag {self.args.weights_of}'s run of {name} "
                             f"seed {seed} has no weights to evaluate")
        for file in ("model.json", "model.pth"):        # model.pth last: it marks a complete copy
            if os.path.isfile(os.path.join(source, file)):
                atomic_write(os.path.join(target, file),
                             lambda tmp, file=file: shutil.copyfile(os.path.join(source, file), tmp))
        with atomic_file(os.path.join(target, "finished")) as handle:
            handle.write(f"weights of run {source} copied by eval/run_seeds.py --weights_of\n")
        return self.reevaluate(name, seed, minutes)


def run_pool(runner: "Runner", jobs: list, work, done_line) -> int:
    """``work(name, seed)`` for every job, --parallel at a time, with the tables rewritten after
    each success; returns the number of failures (each reported)."""
    def one(job):
        name, seed = job
        try:
            row = work(name, seed)
        except (RuntimeError, ValueError, OSError) as error:
            runner.say(f"{name} seed {seed}: FAILED: {error}")
            return False
        runner.say(f"{name} seed {seed}: {done_line(row)}")
        runner.write_tables()
        return True
    with ThreadPoolExecutor(max_workers=runner.args.parallel) as pool:
        return sum(not ok for ok in pool.map(one, jobs))


def rescore(runner: "Runner") -> None:
    """Rewrite every finished run's row from its cross-test results.json and prediction files."""
    for row in read_rows(runner.rows_dir):
        name, seed = row["method"], row["seed"]
        with open(os.path.join(runner.rows_dir, f"{name}_s{seed}_cross_test", "results.json"),
                  encoding="utf-8") as handle:
            runner.save_row({**run_row(json.load(handle), name, seed), "minutes": row.get("minutes")})


def prepare_data(args) -> None:
    """The zoo (built once, with --zoo_seed) and its lists."""
    manifest = os.path.join(args.zoo, "manifest.json")
    recorded = {}
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as handle:
            recorded = json.load(handle)
    # no zoo, a build that stopped before its last source, or a standard zoo to widen
    if "audit" not in recorded or manifest_cross_tests(recorded) != args.cross_tests:
        subprocess.run([sys.executable, "DataPrepare/make_toy_zoo.py", "--out", args.zoo,
                        "--seed", str(args.zoo_seed), "--cross_tests", args.cross_tests], cwd=ROOT, check=True)
        with open(manifest, encoding="utf-8") as handle:
            recorded = json.load(handle)
    built_with = recorded.get("zoo_seed")
    if built_with != args.zoo_seed:
        raise ValueError(f"{manifest} was built with zoo seed {built_with}, not --zoo_seed {args.zoo_seed}; "
                         f"pass --zoo_seed {built_with} or another --zoo folder")
    for mode in ("toy", "pretrain"):
        subprocess.run([sys.executable, "DataPrepare/generate_.py", "--mode", mode, "--data_root", args.zoo,
                        "--save_path", args.data], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.parallel)
    runner = Runner(args, threads)
    os.makedirs(runner.rows_dir, exist_ok=True)
    try:
        prepare_data(args)
        runner.fingerprint = tree_fingerprint(args.zoo)
    except (subprocess.CalledProcessError, ValueError) as error:
        print(f"error: preparing the zoo and its lists failed: {error}", file=sys.stderr)
        return 1
    if args.rescore:
        rescore(runner)
    finished = {(r["method"], r["seed"]): r for r in read_rows(runner.rows_dir)}
    note = other_code_note(list(finished.values()), runner.code)
    if note and not (args.reevaluate or args.rescore):
        runner.say(note)
    if args.weights_of:
        source_rows = os.path.join(args.weights_data or args.data, "seeds", args.weights_of)
        source = {(r["method"], r["seed"]): r for r in read_rows(source_rows)}
        jobs = [(name, seed) for seed in args.seeds for name in args.methods
                if (name, seed) in source and (name, seed) not in finished]
        runner.say(f"evaluating {len(jobs)} finished run(s) of tag {args.weights_of} under --set "
                   f"{' '.join(args.set) or '(none)'} ({len(finished)} already done in {runner.rows_dir})")
        if not jobs and not finished:
            print(f"error: tag {args.weights_of} has no finished run of {' '.join(args.methods)} with seeds "
                  f"{' '.join(map(str, args.seeds))} in {source_rows}",
                  file=sys.stderr)
            return 1
        failed = run_pool(runner, jobs, lambda name, seed: runner.evaluate_weights_of(
            name, seed, source[(name, seed)].get("minutes")), lambda row: "evaluated")
    elif args.reevaluate:
        jobs = [(name, seed) for seed in args.seeds for name in args.methods if (name, seed) in finished]
        runner.say(f"re-evaluating {len(jobs)} finished run(s), {args.parallel} at a time")
        failed = run_pool(runner, jobs, lambda name, seed: runner.reevaluate(
            name, seed, finished[(name, seed)].get("minutes")), lambda row: "re-evaluated")
    else:
        todo = [(name, seed) for seed in args.seeds for name in args.methods if (name, seed) not in finished]
        runner.say(f"{len(finished)} run(s) already finished in {runner.rows_dir}; {len(todo)} to go, "
                   f"{args.parallel} at a time, {threads} thread(s) each; zoo {runner.fingerprint}")
        failed = run_pool(runner, todo, runner.job, lambda row: f"done in {row['minutes']:.1f} min: " + ", ".join(
            f"{key} {row[key]:.1f}" for key in ACCURACY_COLUMNS))
    if runner.write_tables():
        runner.say(f"tables: {args.out}.md, .csv, .json ({len(read_rows(runner.rows_dir))} runs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

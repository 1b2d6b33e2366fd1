"""The kill matrix (issue 16): SIGKILL at every named fault point, rerun, and the results are the uninterrupted run's.

Each graph is the cheapest one that reaches its points: a user's experiment file (``support.tiny``:
data, smoke prior, train, evaluate, render, publish), Table 1 cut to its GDP rows (zero_shot) and
Table 2 cut to IAT (degrade_cub, restore_cub, classify; prepare_cub and finetune_classifier in a
short chain of their own). One uninterrupted reference run per graph is shared by the module. A
chain kills one process per point (``BENCH_FAULT=<job kind>:<point>[:<n>]``), each rerun resuming
what the one before left and being killed further on, and ends with a run without a fault, so one
graph's work is paid about once for a dozen kills. After every kill the next run must say what it
resumed and remove the temporary files the kill left; at the end no temporary file is left anywhere
and every job's outputs and every table equal the reference's (measured times aside).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.e2e import bench, job_kind_of
from support.tiny import RUN_ARGS, compare_runs, differences, temp_files, write_user

#: Table 1 cut to its zero-shot rows: three GDP-x0 jobs of 2 sampling steps on the tiny smoke prior.
GDP_ARGS = ("--table", "1", "--baseline", "gdp_x0", "--zero-shot-steps", "2", "--prior-steps", "3", "--profile",
            "smoke", "--no-progress")
#: Table 2 cut to IAT: the clean and degraded reference rows and IAT's two restorations (2 training steps).
T2_ARGS = ("--table", "2", "--baseline", "iat", "--steps", "2", "--prior-steps", "3", "--profile", "smoke",
           "--no-progress")
MATRIX: list[dict[str, str]] = []


@dataclass(frozen=True)
class Kill:
    fault: str  # BENCH_FAULT
    resumed: tuple[str, ...]  # what the next run's log must say (each a substring)
    temp: str = ""  # the kill leaves a temporary file whose name contains this (the next run removes it)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The user's folder (network, experiment file) and one cache shared by every run of this module."""
    root = tmp_path_factory.mktemp("faults")
    exp = write_user(root / "user")
    env = {"PYTHONPATH": str(root / "user"), "BENCH_CACHE": str(root / "cache")}
    if not os.environ.get("BENCH_WEIGHTS"):  # VGG16's ImageNet file (Table 2) stays where bench weights build put it
        from bench.paths import cache_dir

        env["BENCH_WEIGHTS"] = str(cache_dir() / "weights")
    return {"root": root, "exp": exp, "env": env}


def _run(base: Path, world: dict, args: tuple[str, ...], fault: str | None = None):
    extra = dict(world["env"])  # type: ignore[arg-type]
    if fault:
        extra["BENCH_FAULT"] = fault
    return bench(base, "run", *args, timeout=900, **extra)


def _reference(world: dict, name: str, args: tuple[str, ...], seed_from: Path | None = None) -> Path:
    base = world["root"] / f"ref-{name}"  # type: ignore[operator]
    if seed_from is not None:
        _link_jobs(seed_from / "runs", base / "runs", lambda kind, spec: kind in ("prepare_data", "train_prior"))
    t0 = time.perf_counter()
    proc = _run(base, world, args)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    print(f"[faults] reference {name}: {time.perf_counter() - t0:.1f}s")
    return base


def _link_jobs(src: Path, dst: Path, want) -> list[str]:
    """Hard-link copies of the finished jobs of ``src`` that ``want(kind, spec)`` (outputs are never rewritten)."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for d in sorted(src.iterdir()):
        if not (d / "done.json").is_file() or (dst / d.name).exists():
            continue
        spec = json.loads((d / "job.json").read_text())
        if want(job_kind_of(d), spec):
            shutil.copytree(d, dst / d.name, copy_function=os.link)
            out.append(d.name)
    return out


@pytest.fixture(scope="module")
def ref_tiny(world) -> Path:
    return _reference(world, "tiny", ("--experiment", str(world["exp"]), *RUN_ARGS))


def _chain(base: Path, world: dict, args: tuple[str, ...], kills: list[Kill], graph: str,
           stop: str | None = None) -> None:
    """Kill at each point in turn (each run resumes the one before), then run to the end without a fault
    (or, with ``stop``, until that fault ends the last run where the jobs compared are done)."""
    folders = (base / "runs", base / "tables", Path(world["env"]["BENCH_CACHE"]))
    left: list[Path] = []
    for i, kill in enumerate([*kills, None]):
        t0 = time.perf_counter()
        proc = _run(base, world, args, kill.fault if kill else stop)
        text = proc.stdout + proc.stderr
        if i:  # this run resumed what the previous kill left
            before = kills[i - 1]
            missing = [s for s in before.resumed if s not in text]
            assert not missing, f"after {before.fault} the rerun does not say {missing}:\n{text[-3000:]}"
            still = [p for p in left if p.exists()]
            assert not still, f"after {before.fault} the rerun left the killed run's temporary files {still}"
            said = [ln for ln in text.splitlines() if "resum" in ln or "removed" in ln]
            MATRIX[-1]["resumed"] = " | ".join(said)[:300]
        if kill is None:
            assert proc.returncode == (-9 if stop else 0), text[-3000:]
            break
        assert proc.returncode == -9, f"{kill.fault}: not killed (exit {proc.returncode}):\n{text[-3000:]}"
        left = temp_files(*folders)
        if kill.temp:
            assert any(kill.temp in p.name for p in left), f"{kill.fault} left no temporary file: {left}"
        MATRIX.append({"graph": graph, "point": kill.fault, "killed": "yes (SIGKILL)", "seconds":
                       f"{time.perf_counter() - t0:.1f}", "temp left": ", ".join(p.name for p in left) or "none"})
    assert not temp_files(*folders), temp_files(*folders)


def _print_matrix(graph: str, diffs: list[str]) -> None:
    for row in MATRIX:
        if row["graph"] == graph:
            row["identical"] = "yes" if not diffs else "NO"
            print(f"[matrix] {row['point']:<36} killed: {row['killed']}; temp left: {row['temp left']}; "
                  f"resumed: {row.get('resumed', '')}; identical: {row['identical']}")


TINY_KILLS = [
    Kill("prepare_data:before_rename:5", ("data:smoke_dehazing: resuming an interrupted run", "removed 1 temporary"),
         temp=".png."),
    Kill("train_prior:before_rename:1", ("prior:smoke: resuming an interrupted run", "removed 1 temporary"),
         temp=".checkpoint.pt."),
    Kill("train_prior:checkpoint_saved:1", ("kept its checkpoint(s) checkpoint.pt",
                                            "[smoke prior] resuming from step 3 of 3")),
    Kill("train_prior:after_rename:1", ("prior:smoke: resuming an interrupted run", "output file(s)")),
    Kill("train:checkpoint_saved:1", ("[train] resuming from step 10 of 20",)),
    Kill("train:before_checkpoint:1", ("[train] resuming from step 10 of 20",)),
    Kill("train:before_done", ("[train] resuming from step 20 of 20", "output file(s)")),
    Kill("evaluate:image:4", ("eval:TinyNet+diffloss/seed0: resuming an interrupted run", "output file(s)")),
    Kill("render:before_rename:2", ("render:exp: resuming an interrupted run", "removed 1 temporary"),
         temp=".exp.tex."),
    Kill("publish:before_rename:2", ("[publish] removed 1 temporary file(s)",), temp=".exp.tex."),
    Kill("publish:table:3", ("wrote",)),
]


def test_kill_matrix_of_a_users_experiment(world, ref_tiny: Path) -> None:
    base = world["root"] / "chain-tiny"
    _chain(base, world, ("--experiment", str(world["exp"]), *RUN_ARGS), TINY_KILLS, "tiny")
    diffs = compare_runs(ref_tiny, base)
    _print_matrix("tiny", diffs)
    assert not diffs, diffs


GDP_KILLS = [
    Kill("zero_shot:image:3", ("resuming: 3 of 12 image(s) already restored",)),
    Kill("zero_shot:before_rename:1", ("resuming: 3 of 12 image(s) already restored", "removed 1 temporary"),
         temp=".png."),
]


def test_kill_matrix_of_zero_shot_restoration(world, ref_tiny: Path) -> None:
    """The dehazing GDP job, killed mid-image and mid-write, resumes per image to the uninterrupted job's outputs.

    Every run stops (SIGKILL) when the second zero-shot job starts: the dehazing job is the one compared,
    and sampling the other two tasks would double the test's cost without reaching another point.
    """
    stop = "zero_shot:start:2"
    ref = world["root"] / "ref-gdp"
    _link_jobs(ref_tiny / "runs", ref / "runs", lambda kind, spec: kind in ("prepare_data", "train_prior"))
    proc = _run(ref, world, GDP_ARGS, stop)
    assert proc.returncode == -9, (proc.stdout + proc.stderr)[-3000:]
    base = world["root"] / "chain-gdp"
    _link_jobs(ref_tiny / "runs", base / "runs", lambda kind, spec: kind in ("prepare_data", "train_prior"))
    _chain(base, world, GDP_ARGS, GDP_KILLS, "gdp", stop=stop)
    jobs = [d.name for d in (ref / "runs").iterdir() if job_kind_of(d) == "zero_shot" and (d / "done.json").is_file()]
    assert len(jobs) == 1 and "dehazing" in (ref / "runs" / jobs[0] / "job.json").read_text()
    diffs = [f"{jobs[0]}: {why}" for rel in json.loads((ref / "runs" / jobs[0] / "done.json").read_text())["outputs"]
             if (why := differences(ref / "runs" / jobs[0] / rel, base / "runs" / jobs[0] / rel))]
    _print_matrix("gdp", diffs)
    assert not diffs, diffs


@pytest.fixture(scope="module")
def ref_t2(world, ref_tiny: Path) -> Path:
    return _reference(world, "t2", T2_ARGS, seed_from=ref_tiny)


def _vgg16_side(ref: Path):
    """Which of the reference's jobs are VGG16's fine-tuning and its classification of the clean images."""
    from bench.graph.store import RunStore

    store = RunStore(ref / "runs")
    jobs = [store.load_job(d.name) for d in (ref / "runs").iterdir() if (d / "job.json").is_file()]
    vgg = next(j.key for j in jobs if j.kind == "finetune_classifier" and j.config["arch"] == "vgg16")

    def want(kind: str, spec: dict) -> bool:
        return kind in ("prepare_data", "train_prior", "train", "prepare_cub") or spec["key"] == vgg or (
            kind == "classify" and spec["config"]["row"] == "clean" and spec["inputs"]["classifier"] == vgg)

    return want


def test_kill_matrix_of_cub_preparation(world, ref_t2: Path) -> None:
    """prepare_cub killed mid-image: the rerun resumes it to the reference's outputs (and is stopped when the
    first classifier starts: what follows is the next test's)."""
    base = world["root"] / "chain-cub"
    _link_jobs(ref_t2 / "runs", base / "runs", lambda kind, spec: kind in ("prepare_data", "train_prior", "train"))
    _chain(base, world, T2_ARGS, [Kill("prepare_cub:image:5", ("data:cub-standin: resuming an interrupted run",))],
           "cub", stop="finetune_classifier:start")
    done = [d for d in (base / "runs").iterdir() if job_kind_of(d) == "prepare_cub" and (d / "done.json").is_file()]
    assert len(done) == 1
    diffs = [f"{done[0].name}: {why}" for rel in json.loads((done[0] / "done.json").read_text())["outputs"]
             if (why := differences(ref_t2 / "runs" / done[0].name / rel, done[0] / rel))]
    _print_matrix("cub", diffs)
    assert not diffs, diffs


T2_KILLS = [
    Kill("finetune_classifier:checkpoint_saved:1", ("classifier:resnet50: resuming an interrupted run",
                                                    "[classifier] resuming from step")),
    Kill("degrade_cub:image:2", ("degrade:", "resuming an interrupted run")),
    Kill("restore_cub:image:3", ("restore:iat", "resuming an interrupted run")),
    Kill("classify:before_rename:1", ("removed 1 temporary",), temp=".per_image.csv."),
    Kill("classify:before_done:2", ("output file(s)",)),
]


def test_kill_matrix_of_restoration_and_classification(world, ref_t2: Path) -> None:
    """ResNet50's fine-tuning, a degradation, a restoration and two classifications killed in turn; the table and
    every job equal the reference's. (VGG16's fine-tuning, the slowest job, is the reference's: the ResNet50 one
    is killed instead.)"""
    base = world["root"] / "chain-t2"
    _link_jobs(ref_t2 / "runs", base / "runs", _vgg16_side(ref_t2))
    _chain(base, world, T2_ARGS, T2_KILLS, "t2")
    diffs = compare_runs(ref_t2, base)
    _print_matrix("t2", diffs)
    assert not diffs, diffs


# --------------------------------------------------------------------------------------------- a full disk


def _store_status(base: Path) -> dict[str, str]:
    from bench.graph.store import RunStore

    store = RunStore(base / "runs")
    return {job_kind_of(d): store.status(store.load_job(d.name)) for d in (base / "runs").iterdir()}


def test_a_full_disk_stops_the_run_in_one_sentence_and_the_rerun_resumes(world, ref_tiny: Path) -> None:
    """ENOSPC (injected at the write of the step-20 checkpoint, then of a table): one sentence naming the file,
    the free space and the option that moves the folder; finished jobs intact, the training resumable."""
    base = world["root"] / "disk-injected"
    _link_jobs(ref_tiny / "runs", base / "runs", lambda kind, spec: kind in ("prepare_data", "train_prior"))
    args = ("--experiment", str(world["exp"]), *RUN_ARGS)
    proc = _run(base, world, args, "train:before_rename:2:enospc")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text[-3000:]
    runs = (base / "runs").resolve()
    assert f"Error: The disk is full: writing {runs}/" in text and "/checkpoint.pt failed with " in text, text[-2000:]
    assert f"free on the file system of {runs}." in text and "--runs-dir (or BENCH_RUNS)" in text, text[-2000:]
    status = _store_status(base)
    assert status == {"prepare_data": "done", "train_prior": "done", "train": "pending", "evaluate": "pending",
                      "render": "pending"}, status
    train = next(d for d in (base / "runs").iterdir() if job_kind_of(d) == "train")
    assert not (train / "error.json").exists() and not temp_files(base / "runs")
    from bench.train.checkpoint import CheckpointFiles

    # the step-10 checkpoint had been moved to checkpoint.prev.pt before the step-20 write failed: still readable
    assert CheckpointFiles(train / "checkpoint.pt", log=lambda m: None).load()["step"] == 10
    again = _run(base, world, args)
    assert again.returncode == 0 and "[train] resuming from step 10 of 20" in again.stdout + again.stderr
    assert compare_runs(ref_tiny, base) == []
    # the tables folder: the same sentence names it and its option; what was published stays whole
    full = _run(base, world, args, "publish:before_rename:2:enospc")
    text = full.stdout + full.stderr
    tables = (base / "tables").resolve()
    assert full.returncode == 2 and f"writing {tables}/exp.tex failed" in text and "--tables-dir (or BENCH_TABLES)" \
        in text, text[-2000:]
    assert not temp_files(base / "tables") and compare_runs(ref_tiny, base) == []


def _mount_tmpfs(where: Path, size: str) -> str:
    """'' when a tmpfs of ``size`` is mounted at ``where``, else why not."""
    import subprocess

    where.mkdir(parents=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    return "" if proc.returncode == 0 else f"mount -t tmpfs failed here: {proc.stderr.strip()}"


def test_a_really_full_disk_while_tables_are_published(world, ref_tiny: Path) -> None:
    """The tables folder on a 256 KiB tmpfs filled up to 16 KiB: the visual grid's copy hits ENOSPC for real.

    (The runs folder is guarded by the preflight's free-space check, which refuses to start a run that will not
    fit; the tables folder and the cache are not, and a disk can fill up while a run goes on.)
    """
    import subprocess

    base = world["root"] / "disk-real"
    tables = base / "tables"
    why = _mount_tmpfs(tables, "256k")
    if why:
        pytest.skip(why + " (test_a_full_disk_stops_the_run_in_one_sentence_and_the_rerun_resumes injects ENOSPC)")
    try:
        _link_jobs(ref_tiny / "runs", base / "runs", lambda kind, spec: True)
        ballast = tables / "ballast.bin"
        with open(ballast, "wb") as f:
            f.write(b"\0" * (shutil.disk_usage(tables).free - (16 << 10)))
        args = ("--experiment", str(world["exp"]), *RUN_ARGS)
        proc = _run(base, world, args)
        text = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in text, text[-3000:]
        assert f"Error: The disk is full: writing {tables.resolve()}/exp_visual_dehazing.png failed with " in text, text
        assert "--tables-dir (or BENCH_TABLES)" in text and not temp_files(tables)
        published = [p for p in tables.iterdir() if p != ballast]
        assert published and all(not differences(ref_tiny / "tables" / p.name, p) for p in published)  # whole
        ballast.unlink()  # space freed
        again = _run(base, world, args)
        assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
        assert compare_runs(ref_tiny, base) == []
    finally:
        subprocess.run(["umount", str(tables)], check=False)


# --------------------------------------------------------------------------------------------- non-finite training

DIVERGING = '''title = "Diverging"
[[row]]
baseline = "mynets:RawNet"
task = "dehazing"
loss_sets = ["l2"]

[[row]]
baseline = "mynets:TinyNet"
task = "dehazing"
loss_sets = ["l2"]
'''


def test_a_non_finite_loss_fails_its_job_and_the_rest_of_the_graph_goes_on(world) -> None:
    """--lr 1e30 overflows RawNet at step 2: its error.json says so, TinyNet's row still finishes; --lr 1e-3 is a
    new job that finishes, and the failed one stays in bench status."""
    base = world["root"] / "diverging"
    exp = base / "exp.toml"
    base.mkdir()
    exp.write_text(DIVERGING)
    args = ("--experiment", str(exp), "--profile", "smoke", "--steps", "20")
    proc = _run(base, world, (*args, "--lr", "1e30", "--no-progress"))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in text, text[-3000:]
    assert "Error: 1 job(s) failed and 2 could not run: train:RawNet+l2/seed0" in text, text[-2000:]
    from bench.graph.store import RunStore

    store = RunStore(base / "runs")
    by_label = {store.load_job(d.name).describe(): d for d in (base / "runs").iterdir()}
    failed = by_label["train:RawNet+l2/seed0"]
    err = json.loads((failed / "error.json").read_text())
    assert err["type"] == "TrainingDiverged" and " became inf at step 2;" in err["message"]
    assert "no checkpoint had been written yet (the first was due at step 10)" in err["message"]
    assert err["fix"].startswith("Lower the learning rate")
    assert (by_label["eval:TinyNet+l2/seed0"] / "done.json").is_file()  # the other row kept going
    assert not (by_label["eval:RawNet+l2/seed0"] / "done.json").exists()
    again = _run(base, world, (*args, "--lr", "1e-3", "--no-progress"))
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    new = {store.load_job(d.name).describe(): d.name for d in (base / "runs").iterdir()
           if d.name not in {p.name for p in by_label.values()}}
    assert "train:RawNet+l2/seed0" in new and new["train:RawNet+l2/seed0"] != failed.name  # a new hash
    shown = bench(base, "status", *args, "--lr", "1e30", **world["env"])
    rows = [ln for ln in shown.stdout.splitlines() if failed.name in ln]
    assert shown.returncode == 0 and rows and "failed" in rows[0], shown.stdout
    assert "became inf at step 2" in " ".join(shown.stdout.split()), shown.stdout


# --------------------------------------------------------------------------------------------- corruption


def _copy_base(src: Path, dst: Path) -> None:
    """A real copy (never hard links: these tests damage files in place)."""
    shutil.copytree(src / "runs", dst / "runs")
    shutil.copytree(src / "tables", dst / "tables")


def test_a_damaged_output_or_done_json_of_a_finished_job_is_reported_and_redone(world, ref_tiny: Path) -> None:
    """A finished evaluate job's per_image.csv cut in half, and the render job's done.json cut short: the next bench
    run says so for each, redoes them and publishes the very table of the first run."""
    base = world["root"] / "corrupt-output"
    _copy_base(ref_tiny, base)
    evaluate = next(d for d in (base / "runs").iterdir() if job_kind_of(d) == "evaluate")
    csv = evaluate / "per_image.csv"
    csv.write_bytes(csv.read_bytes()[: csv.stat().st_size // 2])
    render = next(d for d in (base / "runs").iterdir() if job_kind_of(d) == "render")
    (render / "done.json").write_text('{"key": "trunc')
    proc = _run(base, world, ("--experiment", str(world["exp"]), *RUN_ARGS))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert "eval:TinyNet+diffloss/seed0: output per_image.csv changed since the job finished; running it again" in text
    assert f"render:exp: {render / 'done.json'} is unreadable; running it again" in text
    ran = [ln.split(" (")[0].removeprefix("[job] ") for ln in text.splitlines() if " -> running" in ln]
    assert ran == ["eval:TinyNet+diffloss/seed0", "render:exp"], ran
    assert list(evaluate.glob("done.corrupt-*.json"))  # the untrusted record is kept aside, not used
    assert compare_runs(ref_tiny, base) == []


def test_an_unreadable_checkpoint_falls_back_to_the_previous_one(world, ref_tiny: Path) -> None:
    """An unfinished training whose newest checkpoint (step 20) is truncated resumes from the one before (step 10),
    says so, and ends with the uninterrupted run's weights and table."""
    base = world["root"] / "corrupt-checkpoint"
    _copy_base(ref_tiny, base)
    train = next(d for d in (base / "runs").iterdir() if job_kind_of(d) == "train")
    assert not list(train.glob("checkpoint*.pt"))  # a finished job keeps no resume state
    (train / "done.json").unlink()  # so this training runs again, and is killed once its last checkpoint is written
    killed = _run(base, world, ("--experiment", str(world["exp"]), *RUN_ARGS), "train:before_done")
    assert killed.returncode == -9, (killed.stdout + killed.stderr)[-3000:]
    ck = train / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    proc = _run(base, world, ("--experiment", str(world["exp"]), *RUN_ARGS))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert f"[checkpoint] {ck} is unreadable (" in text and "falling back to checkpoint.prev.pt (step 10)" in text
    assert "[train] resuming from step 10 of 20" in text
    assert compare_runs(ref_tiny, base) == []

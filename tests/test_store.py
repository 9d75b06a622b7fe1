"""Record integrity (issue 12 points 1, 4, 5, 10; issue 10 point 2): records keyed by content, model and code;
damaged files recomputed; one writer at a time; kill -9 and resume; data-parallel shards under torchrun."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mipeaks.collect import CollectConfig, collect, load_run
from mipeaks.data import load_problems
from mipeaks.evaluate import EvalConfig, evaluate, load_result
from mipeaks.store import (
    WriterLockedError,
    append_jsonl,
    code_fingerprint,
    model_fingerprint,
    read_jsonl,
    runs_read,
    shard,
    writer_lock,
)

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "store_worker.py"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mipeaks" and r.levelno == logging.WARNING]


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "records").iterdir()) if not p.name.startswith(".")}


def _local_file(path: Path, questions: list[str]) -> Path:
    rows = [{"question": q, "answer": f"So {i + 5}.\n#### {i + 5}"} for i, q in enumerate(questions)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


QUESTIONS = ["Ann has 3 pens and gets 2 more. How many?", "A box holds 6 eggs. How many in 1 box?",
             "Bo reads 7 pages. How many pages?"]


# ---------------------------------------------------------------------------------------------- JSONL


def test_read_jsonl_flags_every_kind_of_damage(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    good = [{"id": str(i), "x": i} for i in range(5)]
    for r in good[:2]:
        append_jsonl(path, r)
    with open(path, "ab") as fh:  # a glued line, a half record, a record without its newline
        fh.write(b'{"id": "2", "x": 2}{"id": "3", "x": 3}\n{"id": "9", "x"\n{"x": 1}\n{"id": "4", "x": 4}')
    records, problems = read_jsonl(path, ("id", "x"))
    assert records == good[:2]
    assert problems == ["line 3: not one JSON object", "line 4: not one JSON object",
                        "line 5: missing field(s) ['id']", "line 6: last record has no newline"]
    assert read_jsonl(tmp_path / "none.jsonl") == ([], [])


def test_shard_is_disjoint_and_covers_everything() -> None:
    items = list(range(7))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert shard(items) == items  # outside a launcher: everything


# ---------------------------------------------------------------------------------- content and code keys


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_local_problems_do_not_reuse_gsm8k_records(tiny, shared_data, tmp_path, caplog) -> None:
    cfg = EvalConfig(dataset="gsm8k", n=3, max_new_tokens=3, out_dir=str(tmp_path / "evals"))
    gsm = evaluate(tiny, load_problems("gsm8k", 3, path=shared_data / "gsm8k_test.jsonl"), cfg, progress=False)
    assert [r["gold"] for r in gsm.records] == ["18", "3", "70000"]
    local = load_problems("gsm8k", 3, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS))
    assert [p.id for p in local] == ["0", "1", "2"]
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        res = evaluate(tiny, local, cfg, progress=False)
    assert res.path == gsm.path  # same settings, same file
    assert [r["gold"] for r in res.records] == ["5", "6", "7"]
    assert [r["prompt"].split("\n")[0] for r in res.records] == [f"User: {q}" for q in QUESTIONS]
    [line] = _warnings(caplog)
    assert str(res.path) in line and "problem(s) 0, 1, 2" in line
    caplog.clear()
    again = evaluate(tiny, load_problems("gsm8k", 3, path=shared_data / "gsm8k_test.jsonl"), cfg, progress=False)
    assert _strip(again.records) == _strip(gsm.records) and not _warnings(caplog)  # both sets kept


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_editing_a_data_file_recomputes_its_collection_record(tiny, tmp_path, caplog) -> None:
    data = _local_file(tmp_path / "mine.jsonl", QUESTIONS)
    cfg = CollectConfig(model="tiny-llama", n=3, max_new_tokens=4, data_path=str(data))
    run = collect(tiny, load_problems("gsm8k", 3, path=data), cfg, tmp_path / "run", progress=False)
    before = _files(run.path)
    _local_file(data, [QUESTIONS[0], "Cy has 9 cats and 1 dog. How many pets?", QUESTIONS[2]])
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        run = collect(tiny, load_problems("gsm8k", 3, path=data), cfg, tmp_path / "run", progress=False)
    after = _files(run.path)
    assert {k for k in before if before[k] != after[k]} == {"00001.json", "00001.safetensors"}
    [line] = _warnings(caplog)
    assert "records" in line and "00001" in line and "question" in line
    trace = list(run.traces())[1]
    assert tiny.tokenizer.decode(trace.prompt_ids, skip_special_tokens=True).startswith("Cy has 9 cats")


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_records_of_other_code_are_recomputed(tiny, tmp_path, caplog, monkeypatch) -> None:
    import mipeaks.store

    problems = load_problems("gsm8k", 2, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS[:2]))
    out = tmp_path / "e.jsonl"
    cfg = EvalConfig(max_new_tokens=3)
    first = evaluate(tiny, problems, cfg, out_path=out, progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    out.write_text("".join(json.dumps({**r, "output_ids": [1, 2, 3]}) + "\n" for r in rows))  # marks them
    # one more library in the code fingerprint: what an upgrade or a decoding-code edit does to it
    monkeypatch.setattr(mipeaks.store, "LIBRARIES", (*mipeaks.store.LIBRARIES, "mipeaks-no-such-library"))
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        res = evaluate(tiny, problems, cfg, out_path=out, progress=False)
    same = lambda recs: [{k: v for k, v in r.items() if k != "fingerprint"} for r in _strip(recs)]  # noqa: E731
    assert same(res.records) == same(first.records)  # recomputed, not the marked old ones
    [line] = _warnings(caplog)
    assert str(out) in line and "other code" in line
    assert load_result(out).records == res.records  # the newest record of each id
    assert len(out.read_text().splitlines()) == 4
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["code_fingerprint"] == res.records[0]["fingerprint"]["code"] != rows[0]["fingerprint"]["code"]


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_records_written_before_keys_existed_are_recomputed(tiny, tmp_path, caplog) -> None:
    problems = load_problems("gsm8k", 2, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS[:2]))
    out = tmp_path / "e.jsonl"
    first = evaluate(tiny, problems, EvalConfig(max_new_tokens=3), out_path=out, progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    old = [{k: v for k, v in r.items() if k != "fingerprint"} | {"output_ids": [7]} for r in rows]
    out.write_text("".join(json.dumps(r) + "\n" for r in old))  # the layout of the previous release
    mpath = out.with_suffix(".manifest.json")
    manifest = json.loads(mpath.read_text())
    mpath.write_text(json.dumps({k: v for k, v in manifest.items() if not k.endswith("_fingerprint")
                                 or k == "fingerprint"}))
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        res = evaluate(tiny, problems, EvalConfig(max_new_tokens=3), out_path=out, progress=False)
    assert _strip(res.records) == _strip(first.records)
    [line] = _warnings(caplog)
    assert "other code" in line


def test_code_fingerprint_follows_code_not_comments(tmp_path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "mipeaks", pkg)
    base = code_fingerprint(["generation", "grading"], pkg)
    assert base == code_fingerprint(["grading", "generation"], pkg)
    src = (pkg / "grading.py").read_text()
    (pkg / "grading.py").write_text('"""Other docstring."""\n# a comment\n' + src.split('"""', 2)[2])
    assert code_fingerprint(["generation", "grading"], pkg) == base
    (pkg / "grading.py").write_text(src + "\nEXTRA = 1\n")
    assert code_fingerprint(["generation", "grading"], pkg) != base
    assert code_fingerprint(["generation"], pkg) != code_fingerprint(["grading"], pkg)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_model_fingerprint_is_the_weights(tiny, tokenizer_dir, tmp_path) -> None:
    from tests.conftest import build_tiny

    same = build_tiny("llama", tokenizer_dir)
    other = build_tiny("llama", tokenizer_dir, seed=1)
    assert model_fingerprint(same) == model_fingerprint(tiny) != model_fingerprint(other)
    from transformers import AutoModelForCausalLM

    from mipeaks.models import load_model

    AutoModelForCausalLM.from_config(same.hf_model.config).save_pretrained(tmp_path / "a")  # unbridged copy
    same.tokenizer.save_pretrained(tmp_path / "a")

    saved = load_model(str(tmp_path / "a"))
    fp = model_fingerprint(saved)
    assert fp == model_fingerprint(load_model(str(tmp_path / "a")))  # files, not parameters: cheap
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**cfg, "rms_norm_eps": 1e-5}))
    assert model_fingerprint(load_model(str(tmp_path / "a"))) != fp
    fp = model_fingerprint(load_model(str(tmp_path / "a")))
    AutoModelForCausalLM.from_config(other.hf_model.config).save_pretrained(tmp_path / "b")  # same sizes
    shutil.copy(tmp_path / "b" / "model.safetensors", tmp_path / "a" / "model.safetensors")
    assert model_fingerprint(load_model(str(tmp_path / "a"))) != fp


# ------------------------------------------------------------------------------------------ damaged files


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_damaged_collection_files_are_recomputed(tiny, tmp_path, caplog) -> None:
    problems = load_problems("gsm8k", 4, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS + ["Dee has 1."]))
    cfg = CollectConfig(model="tiny-llama", n=4, max_new_tokens=5)
    clean = _files(collect(tiny, problems, cfg, tmp_path / "clean", progress=False).path)
    run = tmp_path / "run"
    collect(tiny, problems, cfg, run, progress=False)
    rec = run / "records"
    data = (rec / "00000.safetensors").read_bytes()
    (rec / "00000.safetensors").write_bytes(data[: len(data) // 2])  # truncated tensors
    meta = (rec / "00001.json").read_text()
    (rec / "00001.json").write_text(meta[: len(meta) // 2])  # half a .json
    (rec / "00002.json").unlink()  # a crash between the two files
    manifest = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(manifest[: len(manifest) // 2])  # manifest cut in half
    with pytest.raises(ValueError, match="manifest.json is damaged"):
        load_run(run)
    shutil.copy(tmp_path / "clean" / "manifest.json", run / "manifest.json")
    with pytest.raises(ValueError, match="00000.safetensors: damaged record"):
        list(load_run(run).traces())
    (run / "manifest.json").write_text(manifest[: len(manifest) // 2])
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        resumed = collect(tiny, problems, cfg, run, progress=False)
    assert _files(resumed.path) == clean
    lines = _warnings(caplog)
    assert any("manifest.json" in x and "damaged" in x for x in lines)
    assert any("00000" in x and "damaged: 00000.safetensors" in x for x in lines)
    assert any("00001" in x and "00001.json is not valid JSON" in x for x in lines)
    assert json.loads((run / "manifest.json").read_text())["config"]["n"] == 4


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_damaged_jsonl_lines_are_recomputed(tiny, tmp_path, caplog) -> None:
    problems = load_problems("gsm8k", 3, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS))
    cfg = EvalConfig(max_new_tokens=3)
    clean = evaluate(tiny, problems, cfg, out_path=tmp_path / "clean.jsonl", progress=False)
    out = tmp_path / "e.jsonl"
    evaluate(tiny, problems, cfg, out_path=out, progress=False)
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + lines[1] + "\n" + lines[2])  # a glued line, then a last line without newline
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        res = evaluate(tiny, problems, cfg, out_path=out, progress=False)
    assert _strip(res.records) == _strip(clean.records)
    [line] = _warnings(caplog)
    assert str(out) in line and "line 1: not one JSON object" in line and "line 2: last record has no newline" in line
    rows, problems_left = read_jsonl(out, ("id",))
    assert not problems_left and sorted(r["id"] for r in rows) == ["0", "1", "2"]
    mpath = out.with_suffix(".manifest.json")
    mpath.write_text(mpath.read_text()[:40])  # manifest cut in half
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mipeaks"):
        again = evaluate(tiny, problems, cfg, out_path=out, progress=False)
    assert again.records == res.records and "damaged manifest" in _warnings(caplog)[0]
    assert json.loads(mpath.read_text())["config"]["max_new_tokens"] == 3


# ---------------------------------------------------------------------------------- one writer at a time


def _hold(lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(WORKER), "lock", str(lock)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_a_second_writer_gets_one_line_naming_the_holder(tiny, tmp_path) -> None:
    problems = load_problems("gsm8k", 2, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS[:2]))
    out = tmp_path / "e.jsonl"
    holders = [_hold(tmp_path / ".e.jsonl.lock"), _hold(tmp_path / "run" / ".writer.lock")]
    try:
        with pytest.raises(WriterLockedError, match=f"pid {holders[0].pid} on ") as err:
            evaluate(tiny, problems, EvalConfig(max_new_tokens=2), out_path=out, progress=False)
        assert "\n" not in str(err.value)
        with pytest.raises(WriterLockedError, match=f"pid {holders[1].pid} on "):
            collect(tiny, problems, CollectConfig(model="tiny-llama", n=2, max_new_tokens=2), tmp_path / "run",
                    progress=False)
        assert not out.exists()  # nothing written by the refused writer
    finally:
        for proc in holders:
            proc.communicate("\n", timeout=30)
    res = evaluate(tiny, problems, EvalConfig(max_new_tokens=2), out_path=out, progress=False)
    assert len(out.read_text().splitlines()) == 2 and res.n == 2
    with writer_lock(tmp_path / "x.lock"), pytest.raises(WriterLockedError, match=f"pid {os.getpid()}"):
        with writer_lock(tmp_path / "x.lock"):
            pass


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_a_waiting_writer_resumes_what_the_holder_wrote(tiny, tmp_path, monkeypatch) -> None:
    """With $MIPEAKS_WRITER_WAIT (the book's chapters) a second writer waits, then reuses the holder's records."""
    import threading

    from mipeaks.models import count_forward_calls

    problems = load_problems("gsm8k", 2, path=_local_file(tmp_path / "mine.jsonl", QUESTIONS[:2]))
    cfg, cc = EvalConfig(max_new_tokens=3), CollectConfig(model="tiny-llama", n=2, max_new_tokens=3)
    ref = evaluate(tiny, problems, cfg, out_path=tmp_path / "ref" / "e.jsonl", progress=False)
    collect(tiny, problems, cc, tmp_path / "ref" / "run", progress=False)
    ref_manifest = json.loads((tmp_path / "ref" / "run" / "manifest.json").read_text())
    assert ref_manifest["git_commits"]
    out = tmp_path / "out"
    holders = [_hold(out / ".e.jsonl.lock"), _hold(out / "run" / ".writer.lock")]

    def finish_then_release() -> None:  # each holder "writes" its result while the other side waits, then lets go
        time.sleep(1.0)
        shutil.copytree(tmp_path / "ref" / "run", out / "run", dirs_exist_ok=True)
        holders[1].communicate("\n", timeout=30)
        time.sleep(1.0)
        for suffix in (".jsonl", ".manifest.json"):
            shutil.copy(ref.path.with_suffix(suffix), out / f"e{suffix}")
        holders[0].communicate("\n", timeout=30)

    monkeypatch.setenv("MIPEAKS_WRITER_WAIT", "120")
    thread = threading.Thread(target=finish_then_release)
    thread.start()
    try:
        with count_forward_calls(tiny) as calls:
            run = collect(tiny, problems, cc, out / "run", progress=False)
            res = evaluate(tiny, problems, cfg, out_path=out / "e.jsonl", progress=False)
    finally:
        thread.join()
    assert calls[0] == 0  # nothing recomputed: both resumed the holders' finished records
    assert _strip(res.records) == _strip(ref.records) and len(run) == 2
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    assert manifest["git_commits"] == ref_manifest["git_commits"]  # read after waiting, not before


def test_writer_wait_times_out_with_the_holder_named(tmp_path, monkeypatch) -> None:
    proc = _hold(tmp_path / "x.lock")
    try:
        with pytest.raises(WriterLockedError, match=f"still being written by pid {proc.pid} on .* after 0.3 s"):
            with writer_lock(tmp_path / "x.lock", wait=0.3):
                pass
        monkeypatch.setenv("MIPEAKS_WRITER_WAIT", "soon")
        with pytest.raises(ValueError, match="MIPEAKS_WRITER_WAIT must be a number of seconds, got 'soon'"):
            with writer_lock(tmp_path / "x.lock"):
                pass
        with pytest.raises(ValueError, match="wait must be >= 0"):
            with writer_lock(tmp_path / "x.lock", wait=-1):
                pass
    finally:
        proc.communicate("\n", timeout=30)
    with writer_lock(tmp_path / "x.lock", wait=0.3):  # free again: taken at once
        pass


# ------------------------------------------------------------------------------- kill -9, data parallel


def _run_worker(out: Path, model: Path, *args: str, torchrun: bool = False, kill_when=None,
                timeout: float = 400) -> int:
    """Run the worker on ``model`` (optionally under torchrun); ``kill_when(out)`` returns a pid to SIGKILL once it can."""
    head = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2"] if torchrun \
        else [sys.executable]
    proc = subprocess.Popen([*head, str(WORKER), "run", str(out), "--model", str(model), *args], env=_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    start, killed = time.monotonic(), False
    while proc.poll() is None and time.monotonic() - start < timeout:
        pid = kill_when(out) if kill_when is not None and not killed else None
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"worker timed out: {proc.stdout.read()[-3000:]}")
    log = proc.stdout.read()
    assert killed or kill_when is None, f"the worker finished before it could be killed:\n{log[-3000:]}"
    if kill_when is None:
        assert proc.returncode == 0, log[-3000:]
    return proc.returncode


def _rows(path: Path) -> list[dict]:
    return sorted(_strip(read_jsonl(path, ("id",))[0]), key=lambda r: r["id"])


def _owner_pid(lock: Path) -> int | None:
    try:
        return int(lock.with_name(lock.name + ".owner").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


# The workers run a tiny random Llama saved to disk (a stand-in for a hub model: a process starts in seconds).
# It never stops early, so each problem takes all 160 steps (about a second): time to kill
# a worker between two records.
WORKER_ARGS = ("--tokens", "160", "--batch", "1")


@pytest.mark.slow
@pytest.mark.heavy
def test_kill_9_mid_collection_then_resume(tmp_path, tiny_model_dir) -> None:
    args = (tiny_model_dir, "--problems", "3", *WORKER_ARGS)
    _run_worker(tmp_path / "ref", *args)

    def first_record(out: Path) -> int | None:
        return _owner_pid(out / "run" / ".writer.lock") if (out / "run/records/00000.json").exists() else None

    assert _run_worker(tmp_path / "cut", *args, kill_when=first_record) == -signal.SIGKILL
    assert not (tmp_path / "cut" / "evals.jsonl").exists()
    _run_worker(tmp_path / "cut", *args)
    assert _files(tmp_path / "cut" / "run") == _files(tmp_path / "ref" / "run")
    assert _rows(tmp_path / "cut" / "evals.jsonl") == _rows(tmp_path / "ref" / "evals.jsonl")


@pytest.mark.slow
@pytest.mark.heavy
def test_torchrun_two_ranks_resume_a_killed_rank_and_equal_one_process(tmp_path, tiny_model_dir) -> None:
    args = (tiny_model_dir, "--problems", "4", *WORKER_ARGS)  # one problem per batch: rank 0 takes 0, 2; rank 1: 1, 3
    _run_worker(tmp_path / "one", *args)
    out = tmp_path / "two"

    def rank1_collected(out: Path) -> int | None:
        return _owner_pid(out / "run" / ".writer-rank1-of-2.lock") if (out / "run/records/00001.json").exists() \
            else None

    def rank1_evaluated(out: Path) -> int | None:
        shard_file = out / "evals.rank1.jsonl"
        done = shard_file.exists() and shard_file.read_text().count("\n") >= 1
        return _owner_pid(out / ".evals.rank1.jsonl.lock") if done else None

    # kill rank 1 after its first collection record, then after its first evaluation record, then finish
    assert _run_worker(out, *args, torchrun=True, kill_when=rank1_collected) != 0
    assert not (out / "run/records/00003.json").exists()
    assert _run_worker(out, *args, torchrun=True, kill_when=rank1_evaluated) != 0
    assert [r["id"] for r in read_jsonl(out / "evals.rank1.jsonl")[0]] == ["1"]  # rank 1's share: 1 and 3
    _run_worker(out, *args, torchrun=True)
    for name in ("one", "two"):
        run = load_run(tmp_path / name / "run")
        assert len(run) == 4 and [t.problem_id for t in run.traces()] == ["0", "1", "2", "3"]
    assert _files(out / "run") == _files(tmp_path / "one" / "run")
    assert _rows(out / "evals.jsonl") == _rows(tmp_path / "one" / "evals.jsonl")
    assert not list(out.glob("evals.rank*.jsonl"))  # merged by rank 0
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    assert manifest["problem_ids"] == ["0", "1", "2", "3"] and manifest["git_commits"]


def test_runs_read_names_the_commit(tmp_path) -> None:
    from mipeaks.book import provenance_cell
    from mipeaks.provenance import git_commit

    run = tmp_path / "r"
    (run / "records").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"config": {}, "git_commit": "abc123"}))
    load_run(run)
    assert runs_read()[str(run)] == "abc123"
    table = provenance_cell({"n": 1})
    assert table.loc["runs read, made at commit abc123", "value"] == "r"
    assert git_commit() is None or len(git_commit()) >= 40

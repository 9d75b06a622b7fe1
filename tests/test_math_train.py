"""MATH train (``math-train``): the hub split's layout, the seeded random sample of the paper's text,
the code's first rows, and how configs and presets carry the choice (issue 11 §2)."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
from collections import Counter

import pytest

from mipeaks import book
from mipeaks.collect import CollectConfig
from mipeaks.data import DATASETS, DEFAULT_SAMPLE, describe_sample, load_problems, seeded_sample
from mipeaks.pipeline import MIConfig, run_dir

SUBJECTS = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
            "Prealgebra", "Precalculus")
COLUMNS = ("problem", "solution", "answer", "subject", "level", "unique_id")  # the hub card's features


def _hub_rows() -> list[dict]:
    """70 rows in the layout of nlile/hendrycks-MATH-benchmark (train): subject by subject, 2 per level."""
    rows = []
    for subject in SUBJECTS:
        slug = subject.lower().replace(" & ", "_").replace(" ", "_")
        for level in range(1, 6):
            for k in range(2):
                idx = 100 * level + k
                answer = str(idx + len(slug))
                rows.append({"problem": f"({subject}, level {level}) What is {idx} + {len(slug)}?",
                             "solution": f"Add: {idx} + {len(slug)} = $\\boxed{{{answer}}}$.",
                             "answer": answer, "subject": subject, "level": level,
                             "unique_id": f"train/{slug}/{idx}.json"})
    return rows


def _write(path, rows) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture()
def split(tmp_path):
    """The 70-row split as jsonl, in hub order."""
    path = tmp_path / "train.jsonl"
    _write(path, _hub_rows())
    return path


def _ids(problems) -> list[str]:
    return [p.id for p in problems]


def test_hub_source_is_the_prm800k_split() -> None:
    assert DATASETS["math-train"].hub == ("nlile/hendrycks-MATH-benchmark", None, "train")
    assert DATASETS["math-train"].size == 12000
    assert DEFAULT_SAMPLE["math-train"] == "random"
    assert {DEFAULT_SAMPLE[d] for d in ("gsm8k", "math500", "aime24")} == {"first"}


def test_offline_hub_load_fails_in_one_line_naming_the_repo() -> None:
    with pytest.raises(RuntimeError) as err:  # HF_HUB_OFFLINE=1 in the test run: the real call fails
        load_problems("math-train", 3, source="hub")
    assert "nlile/hendrycks-MATH-benchmark" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_hub_layout_fields(tmp_path, suffix) -> None:
    path = tmp_path / f"train{suffix}"
    _write(path, _hub_rows())
    [p] = load_problems("math-train", 1, path=path, sample="first")
    assert p.id == "train/algebra/100.json" and p.answer == "107"
    assert p.question == "(Algebra, level 1) What is 100 + 7?"
    assert p.meta["subject"] == "Algebra" and int(p.meta["level"]) == 1


def test_sample_is_seeded_and_deterministic(split) -> None:
    a = load_problems("math-train", 20, path=split)
    assert _ids(a) == _ids(load_problems("math-train", 20, path=split, sample="random", seed=0))  # the default
    assert _ids(a) == _ids(load_problems("math-train", 20, path=split))  # same call, same sample
    b = load_problems("math-train", 20, path=split, seed=1)
    assert _ids(a) != _ids(b) and set(_ids(a)) != set(_ids(b))
    assert len(set(_ids(a))) == 20


def test_sample_covers_subjects_and_levels_unlike_the_first_rows(split) -> None:
    sample = load_problems("math-train", 20, path=split)
    first = load_problems("math-train", 20, path=split, sample="first")
    assert {p.meta["subject"] for p in first} == {"Algebra", "Counting & Probability"}  # file order: 2 subjects
    assert len({p.meta["subject"] for p in sample}) >= 5
    assert len({p.meta["level"] for p in sample}) >= 4


def test_sample_does_not_depend_on_row_order_or_format(tmp_path, split) -> None:
    rows = _hub_rows()
    random.Random(7).shuffle(rows)
    expected = _ids(load_problems("math-train", 15, path=split, seed=3))
    for suffix in (".jsonl", ".csv", ".parquet"):
        path = tmp_path / f"shuffled{suffix}"
        _write(path, rows)
        assert _ids(load_problems("math-train", 15, path=path, seed=3)) == expected, suffix
    # the authors' CSV has only problem and solution (ids are row numbers): the sample is the same problems
    bare = tmp_path / "math_train_12k.csv"
    _write(bare, [{"problem": r["problem"], "solution": r["solution"]} for r in rows])
    questions = [p.question for p in load_problems("math-train", 15, path=split, seed=3)]
    assert [p.question for p in load_problems("math-train", 15, path=bare, seed=3)] == questions


def test_first_rows_keep_file_order(tmp_path) -> None:
    rows = _hub_rows()
    random.Random(1).shuffle(rows)
    path = tmp_path / "shuffled.csv"
    _write(path, rows)
    assert _ids(load_problems("math-train", 12, path=path, sample="first")) == [r["unique_id"] for r in rows[:12]]
    assert _ids(load_problems("math-train", path=path, sample="first")) == [r["unique_id"] for r in rows]


def test_sample_prefixes_and_whole_population(split) -> None:
    big = load_problems("math-train", 30, path=split, seed=4)
    assert _ids(load_problems("math-train", 10, path=split, seed=4)) == _ids(big)[:10]
    everything = load_problems("math-train", path=split, seed=4)  # n=None: all, in the seeded order
    assert _ids(everything)[:30] == _ids(big) and sorted(_ids(everything)) == sorted(r["unique_id"] for r in _hub_rows())


def test_every_problem_is_about_equally_likely(split) -> None:
    population = load_problems("math-train", path=split, sample="first")
    counts = Counter(p.id for seed in range(400) for p in seeded_sample(population, 10, seed))
    expected = 400 * 10 / 70  # 57.1; binomial sd about 7
    assert len(counts) == 70 and min(counts.values()) > expected - 30 and max(counts.values()) < expected + 30


def test_benchmarks_keep_the_first_rows_by_default(tmp_path, shared_data) -> None:
    assert _ids(load_problems("math500", 5)) == _ids(load_problems("math500"))[:5]
    sampled = load_problems("math500", 5, sample="random")
    assert _ids(sampled) != _ids(load_problems("math500", 5)) and len(set(_ids(sampled))) == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample="rnd"), "sample must be one of"),
    (dict(sample="random", seed=-1), "seed must be a non-negative int"),
    (dict(sample="random", seed="0"), "seed must be a non-negative int"),
    (dict(sample="random", seed=True), "seed must be a non-negative int"),
    (dict(sample="first", seed=0), "seed= applies to a random sample"),
    (dict(n=71), "has only 70"),
])
def test_bad_arguments_give_one_line_errors(split, kwargs, message) -> None:
    kwargs = {"n": 5, **kwargs}
    with pytest.raises(ValueError, match=message) as err:
        load_problems("math-train", path=split, **kwargs)
    assert "\n" not in str(err.value)


def test_arith_is_generated_not_sampled() -> None:
    with pytest.raises(ValueError, match="generated, not sampled") as err:
        load_problems("arith", 3, sample="random")
    assert "\n" not in str(err.value)
    assert _ids(load_problems("arith", 3, sample="first", seed=2)) == _ids(load_problems("arith", 3, seed=2))


def test_configs_carry_the_sample(split) -> None:
    cfg = MIConfig(dataset="math-train", n=8, data_path=str(split))
    assert cfg.sample == "auto" and cfg.sample_seed == 0
    cc = cfg.collect_config()
    assert (cc.sample, cc.sample_seed) == ("auto", 0)
    assert _ids(cc.problems()) == _ids(load_problems("math-train", 8, path=split, seed=0))
    other = MIConfig(dataset="math-train", n=8, data_path=str(split), sample_seed=1)
    assert _ids(other.collect_config().problems()) == _ids(load_problems("math-train", 8, path=split, seed=1))
    first = MIConfig(dataset="math-train", n=8, data_path=str(split), sample="first")
    assert _ids(first.collect_config().problems()) == [r["unique_id"] for r in _hub_rows()[:8]]
    # the run directory (and every record key: the config's fields) sees the choice
    assert len({run_dir(c, "/runs") for c in (cfg, other, first)}) == 3
    assert {"sample", "sample_seed"} <= set(dataclasses.asdict(cc))


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample="some"), "sample"),
    (dict(sample_seed=-1), "sample_seed must be >= 0"),
    (dict(dataset="gsm8k", sample_seed=3), "has no effect"),
    (dict(dataset="math-train", sample="first", sample_seed=3), "has no effect"),
    (dict(dataset="arith", sample="random"), "generated, not sampled"),
])
def test_config_rejects_bad_sampling(kwargs, message) -> None:
    for cls in (MIConfig, CollectConfig):
        with pytest.raises(ValueError, match=message) as err:
            cls(**kwargs)
        assert "\n" not in str(err.value)


def test_settings_text_and_model_box_name_the_sample() -> None:
    assert describe_sample("math-train", 100) == "seeded random sample n=100 (seed 0)"
    assert describe_sample("math-train", 100, "first") == "first n=100"
    assert describe_sample("gsm8k", 20) == "first n=20"
    cfg = MIConfig(model="deepseek-ai/DeepSeek-R1-Distill-Llama-8B", dataset="math-train", n=100, sample_seed=5)
    assert "100 MATH train problems (a seeded random sample, seed 5)" in book.model_box(cfg)
    assert "the first 100 MATH train problems" in book.model_box(dataclasses.replace(cfg, sample="first",
                                                                                     sample_seed=0))


def test_presets_sample_math_train_at_random() -> None:
    for slug in ("r1-llama-8b", "qwen2.5-14b"):
        preset = book.load_preset(slug)
        for stem in ("01_mi_trajectories", "02_peak_statistics", "03_reasoning_vs_base", "04_thinking_tokens",
                     "09_what_hsic_measures"):
            params = book.preset_parameters(preset, book.NOTEBOOK_DIR / f"{stem}.py")
            assert (params["dataset"], params["n"], params["sample"], params["sample_seed"]) == \
                ("math-train", 100, "random", 0), (slug, stem)

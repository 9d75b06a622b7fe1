"""Smoke tests of ``scripts/``: execute_notebook, build_book (staging), make_presets, publish_version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))


def _run(script: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("script", ["execute_notebook.py", "build_book.py", "publish_version.py"])
def test_help(script) -> None:
    proc = _run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:") and "--" in proc.stdout


def test_execute_notebook_runs_a_py_source(tmp_path) -> None:
    from execute_notebook import execute

    py = tmp_path / "tiny.py"
    py.write_text("# %%\nimport os\nx = 6 * 7\nprint(x, os.path.basename(os.getcwd()))\n")
    out = execute(py, timeout=120)
    nb = nbformat.read(str(out), as_version=4)
    [cell] = nb.cells
    assert out == tmp_path / "tiny.ipynb" and cell.execution_count == 1
    assert cell.outputs[0]["text"] == f"42 {tmp_path.name}\n"  # runs in the notebook's folder
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    bad = _run("execute_notebook.py", str(tmp_path / "tiny.ipynb"))
    assert bad.returncode == 1 and "give the jupytext .py source" in bad.stderr


def test_build_book_stages_the_chapters(tmp_path) -> None:
    from build_book import stage, toc_chapters

    chapters = toc_chapters()
    assert chapters and all(c.endswith(".ipynb") for c in chapters)
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    for name in chapters[1:]:
        (notebooks / name).write_text("{}")
    with pytest.raises(FileNotFoundError, match=chapters[0]):
        stage(tmp_path / "a", notebooks)
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    (fallback / chapters[0]).write_text('{"from": "fallback"}')
    used = stage(tmp_path / "b", notebooks, banner="Preset X", title_suffix="X", fallback=fallback)
    assert used == [chapters[0]]
    assert sorted(p.name for p in (tmp_path / "b" / "notebooks").iterdir()) == sorted(chapters)
    assert (tmp_path / "b" / "notebooks" / chapters[0]).read_text() == '{"from": "fallback"}'
    config = yaml.safe_load((tmp_path / "b" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["sphinx"]["config"]["mipeaks_banner"] == "Preset X" and config["title"].endswith(" (X)")
    assert (tmp_path / "b" / "book" / "_toc.yml").is_file()


def test_make_presets_match_the_committed_files() -> None:
    import make_presets

    assert make_presets.rr_layer("r1-llama-8b", 32)[0] == 23  # run_RR.sh
    assert make_presets.rr_layer("r1-qwen-7b", 28)[0] == 20  # round(23 / 31 * 27)
    for slug in make_presets.MODELS:
        committed = (ROOT / "notebooks" / "params" / f"{slug}.yaml").read_text()
        assert make_presets.render(slug) == committed, f"{slug}.yaml is out of date: run scripts/make_presets.py"


def test_publish_version(tmp_path) -> None:
    from mipeaks.provenance import versions

    version = versions(("mipeaks",))["mipeaks"]
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("<p>book</p>")
    switcher = tmp_path / "switcher.json"
    switcher.write_text(json.dumps([{"version": "0.0.1", "url": "/0.0.1/"},
                                    {"version": version, "url": "x", "preferred": True}]))
    site = tmp_path / "site"
    (site / "0.0.1").mkdir(parents=True)
    proc = _run("publish_version.py", "--html", str(html), "--site", str(site), "--switcher", str(switcher),
                "--base-url", "/book")
    assert proc.returncode == 0, proc.stderr
    assert (site / version / "index.html").read_text() == "<p>book</p>"
    listed = json.loads((site / "switcher.json").read_text())
    assert [e["url"] for e in listed] == ["/book/0.0.1/", f"/book/{version}/"]
    assert json.loads((site / "0.0.1" / "switcher.json").read_text()) == listed  # older versions see the new one
    assert f'url={version}/index.html' in (site / "index.html").read_text()
    switcher.write_text(json.dumps([{"version": "0.0.1", "url": "/0.0.1/"}]))
    proc = _run("publish_version.py", "--html", str(html), "--site", str(site), "--switcher", str(switcher))
    assert proc.returncode == 1 and f"version {version} is not in" in proc.stderr

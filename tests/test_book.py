"""The companion book: notebook conventions, presets, and an execution-free build of the HTML.

(a) every ``notebooks/NN_name.py`` has a paired, executed ``.ipynb`` with the same code cells, one
    ``parameters`` cell holding exactly the fields of its config class, and a checked cell;
(b) every preset only sets parameters that exist, and builds valid configs;
(c) the book builds (``-W``, execution off) from the committed notebooks, with no broken image, no
    error output, the version and commit on every page, and a valid version-switcher list.
No browser is needed (the headless-Chromium screenshot is ``make screenshot``).
"""

from __future__ import annotations

import dataclasses
import html.parser
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest

import mipeaks
from mipeaks import book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
PRESETS = sorted((ROOT / "notebooks" / "params").glob("*.yaml"))
CHECK = "# NBVAL_CHECK_OUTPUT"
sys.path.insert(0, str(ROOT / "scripts"))


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _config_classes() -> dict[str, type]:
    """Every dataclass defined in a mipeaks module, by name."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(mipeaks.__path__):
        module = importlib.import_module(f"mipeaks.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found[name] = obj
    return found


@pytest.fixture(scope="module")
def config_classes() -> dict[str, type]:
    return _config_classes()


def _config_class_of(nb, classes: dict[str, type]) -> type:
    calls = [m for c in _code_cells(nb) for m in re.findall(r"config_from\(\s*(\w+)\s*,\s*globals\(\)\s*\)", c.source)]
    assert len(calls) == 1, f"expected one book.config_from(ConfigClass, globals()) call, found {calls}"
    assert calls[0] in classes, f"{calls[0]} is not a dataclass of mipeaks"
    return classes[calls[0]]


# ---------------------------------------------------------------------------
# (a) notebooks
# ---------------------------------------------------------------------------


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_name.py found"
    chapters = [Path(c).stem for c in __import__("build_book").toc_chapters()]
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(chapters), "notebooks/ and book/_toc.yml disagree"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_pairing_and_parameters(py: Path, config_classes):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} is missing: run scripts/execute_notebook.py {py.relative_to(ROOT)}"
    source = jupytext.read(str(py))
    executed = nbformat.read(str(ipynb), as_version=4)
    want = [c.source.rstrip() for c in _code_cells(source)]
    got = [c.source.rstrip() for c in _code_cells(executed)]
    assert got == want, f"{ipynb.name} is out of date with {py.name}: re-execute it"

    tagged = [i for i, c in enumerate(_code_cells(source)) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{py.name}: expected exactly one 'parameters' cell, found {len(tagged)}"
    cls = _config_class_of(source, config_classes)
    names = set(book.notebook_parameters(py))
    fields = {f.name for f in dataclasses.fields(cls)}
    assert names == fields, (f"{py.name}: parameters {sorted(names)} != fields of {cls.__name__} "
                             f"(missing {sorted(fields - names)}, extra {sorted(names - fields)})")
    nxt = _code_cells(source)[tagged[0] + 1].source
    assert "config_from(" in nxt, f"{py.name}: the cell after 'parameters' must build the config"
    assert any(CHECK in c.source for c in _code_cells(source)), f"{py.name}: no '{CHECK}' cell"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_clean(py: Path):
    nb = nbformat.read(str(py.with_suffix(".ipynb")), as_version=4)
    leaks = [str(ROOT), "/site-packages/", str(Path.home()) + "/"]
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.execution_count is not None, f"code cell {i} of {py.stem} was not executed"
        assert "injected-parameters" not in cell.metadata.get("tags", []), "commit the default-parameter run"
        for out in cell.outputs:
            assert out.output_type != "error", f"code cell {i} of {py.stem} raised {out.get('ename')}"
            text = out.get("text", "") + "".join(str(v) for k, v in out.get("data", {}).items()
                                                  if k.startswith("text/"))
            for leak in leaks:
                assert leak not in text, f"code cell {i} of {py.stem} prints a machine path ({leak!r})"
    checked = [c for c in _code_cells(nb) if CHECK in c.source]
    assert all(c.outputs for c in checked), f"{py.stem}: a checked cell has no output"


# ---------------------------------------------------------------------------
# (b) presets
# ---------------------------------------------------------------------------


def test_presets_exist():
    slugs = {p.stem for p in PRESETS}
    for need in ("r1-qwen-7b", "r1-llama-8b", "r1-qwen-14b", "r1-qwen-32b", "r1-llama-70b", "qwq-32b",
                 "qwen2.5-math-7b", "llama-3.1-8b", "qwen2.5-14b", "qwen2.5-32b", "llama-3.3-70b-instruct",
                 "cpu-smoke"):
        assert need in slugs, f"preset {need} is missing"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_names_exist_and_build_configs(preset: Path, config_classes):
    data = book.load_preset(preset)
    params = {py.stem: book.notebook_parameters(py) for py in NOTEBOOKS}
    every = set().union(*params.values()) if params else set()
    unknown = sorted(set(data["shared"]) - every)
    assert not unknown, f"{preset.name}: shared names {unknown} are no notebook's parameter"
    assert set(data["notebooks"]) <= set(params), f"{preset.name}: unknown chapters {set(data['notebooks']) - set(params)}"
    for py in NOTEBOOKS:
        resolved = book.preset_parameters(data, py)  # raises on a name the chapter lacks
        cls = _config_class_of(jupytext.read(str(py)), config_classes)
        book.config_from(cls, {**params[py.stem], **resolved})  # the values make a valid config


# ---------------------------------------------------------------------------
# book.py helpers
# ---------------------------------------------------------------------------


def test_config_from():
    from mipeaks.evaluate import SuppressionSweepConfig
    from mipeaks.theory import BoundsConfig

    SWEEP = {f.name: getattr(SuppressionSweepConfig(), f.name) for f in dataclasses.fields(SuppressionSweepConfig)}

    cfg = book.config_from(BoundsConfig, {"n_classes": 4, "h_y_bits": 1.5, "max_cum_mi_bits": None,
                                          "points": 5, "n_tables": 0, "seed": 1, "other": 3})
    assert cfg == BoundsConfig(n_classes=4, h_y_bits=1.5, points=5, n_tables=0, seed=1)
    with pytest.raises(NameError, match="points"):
        book.config_from(BoundsConfig, {"n_classes": 4})
    sweep = book.config_from(SuppressionSweepConfig, {**SWEEP, "ks": [0, 3]})  # papermill injects lists
    assert sweep.ks == (0, 3)


def test_print_numbers_and_labels(capsys):
    book.print_numbers({"a": 0.12345, "bb": 3, "c": -0.0001, "d": [1.0, float("nan")]}, digits=2)
    assert capsys.readouterr().out.splitlines() == ["a  : 0.12", "bb : 3", "c  : 0.00", "d  : [1.00, nan]"]
    assert book.label("paper", "R1-Llama-8B", 100, "4xA100") == "paper: R1-Llama-8B, n=100, 4xA100"
    table = book.paper_vs_ours(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [2.0], "y": [3]}),
                               ours_label="mipeaks: m, n=2, CPU", paper_label="paper: M, n=100, 4xA100")
    assert list(table.columns) == ["source", "x", "y"]
    assert table["source"].tolist() == ["paper: M, n=100, 4xA100", "mipeaks: m, n=2, CPU"]


def test_sanitize_masks_noise_not_numbers():
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "notebooks" / "sanitize.cfg").read_text())
    assert len(patterns) >= 8

    def clean(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    assert clean("commit 4f2502894f434122d419b3cb3d8ab12345678901-dirty") == "commit COMMIT"
    assert clean("at 2026-11-25T12:18:03+00:00 in 3.2 s") == "at DATETIME in DURATION"
    assert clean(f"{ROOT}/mipeaks/x.py") == "PATH"
    for keep in ("peaks : 0.262", "tokens : 1234567", "I=H/2 : 1.661", "ratio : 1/2"):
        assert clean(keep) == keep


# ---------------------------------------------------------------------------
# (c) the built book
# ---------------------------------------------------------------------------


class _Pages(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if attrs.get("class"):
            self.classes.append(attrs["class"])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from build_book import build

    missing = [p.stem for p in NOTEBOOKS if not p.with_suffix(".ipynb").is_file()]
    if missing:
        pytest.fail(f"chapters without an executed .ipynb: {missing}")
    return build(ROOT / "notebooks", work=tmp_path_factory.mktemp("book"), execute="off", quiet=True)


def test_book_has_every_chapter(built: Path):
    from build_book import toc_chapters

    for chapter in toc_chapters():
        assert (built / "notebooks" / chapter.replace(".ipynb", ".html")).is_file(), chapter
    for page in ("intro", "overview", "reproduce", "divergences", "changelog"):
        assert (built / "book" / f"{page}.html").is_file(), page


def test_overview_lists_every_claim(built: Path):
    from mipeaks.overview import CLAIMS, STATUSES

    text = (built / "book" / "overview.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr.*?</tr>", text[text.index("<table"):text.index("</table>")], flags=re.S)
    assert len(rows) == len(CLAIMS) + 1  # header + one row per claim
    for claim, row in zip(CLAIMS, rows[1:]):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td.*?</td>", row, flags=re.S)]
        assert cells[0] == claim.item and cells[-1] in STATUSES, cells


def test_book_pages_have_images_no_errors_and_the_version(built: Path):
    stamp = book.version_string(short=True)
    pages = [p for p in built.rglob("*.html") if "_static" not in p.parts and p.name not in
             ("genindex.html", "search.html") and not (p.parent == built and p.name == "index.html")]
    assert len(pages) >= 13
    for page in pages:
        text = page.read_text(encoding="utf-8")
        parser = _Pages()
        parser.feed(text)
        for src in parser.images:
            if src.startswith(("data:", "http:", "https:")):
                continue
            assert (page.parent / src.split("#")[0].split("?")[0]).is_file(), f"{page.name}: broken image {src}"
        bad = [c for c in parser.classes if re.search(r"\btraceback\b", c)]
        assert not bad, f"{page.relative_to(built)}: error output {bad[:3]}"
        assert "Traceback (most recent call last)" not in text, f"{page.name}: a traceback is shown"
        assert stamp in text, f"{page.relative_to(built)} lacks the version stamp {stamp!r}"
    chapter = (built / "notebooks" / "05_error_bounds.html").read_text(encoding="utf-8")
    assert chapter.count("<img") >= 2, "chapter 5 lost its figures"
    assert "version-switcher__button" in chapter


def test_math_renders_from_the_build_itself(built: Path):
    """The pages load MathJax from the build (readable offline), and that copy is complete."""
    chapter = (built / "notebooks" / "05_error_bounds.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*src="([^"]*MathJax[^"]*)"', chapter, flags=re.IGNORECASE)
    assert scripts and not scripts[0].startswith(("http:", "https:", "//")), scripts
    local = (built / "notebooks" / scripts[0].split("?")[0]).resolve()
    assert local.is_file() and (local.parent / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert "MathJax.Hub.Config" in chapter and "\\(" in chapter  # the v2 config and inline math to typeset


def test_switcher_json(built: Path):
    from mipeaks.provenance import versions

    for path in (ROOT / "book" / "_static" / "switcher.json", built / "switcher.json"):
        entries = json.loads(path.read_text())
        assert isinstance(entries, list) and entries
        for entry in entries:
            assert {"version", "url"} <= set(entry), entry
            assert entry["url"].endswith("/")
        assert versions(("mipeaks",))["mipeaks"] in [e["version"] for e in entries], \
            "add the package version to book/_static/switcher.json"
        assert sum(bool(e.get("preferred")) for e in entries) == 1

"""Sphinx extension of the mipeaks book: stamps the version and commit on every page.

At ``config-inited`` it reads :mod:`mipeaks.provenance` (the installed mipeaks version and the
checkout's git commit) and sets:

* ``version`` / ``release``;
* the announcement banner and the footer (sphinx-book-theme ``extra_footer``), both naming
  ``mipeaks <version>, commit <sha>`` (what ``tests/test_book.py`` looks for on every page);
* pydata-sphinx-theme's version switcher (``version_match`` = the mipeaks version, its list read at
  view time from ``mipeaks_switcher_url``; a build carries its own copy as ``switcher.json``);
* the primary sidebar, with the switcher under the logo;
* MathJax from the build itself when the ``jupyter-server-mathjax`` wheel is installed (its
  MathJax 2 files are copied to ``_static/mathjax``), so the math of a book read offline renders;
  without it, Sphinx's default CDN copy of MathJax 3.

It also adds the ``mipeaks-claims`` directive of ``book/overview.md``: the table of the paper's
claims and this book's status on each, built by :func:`mipeaks.overview.claims_markdown` from the
key numbers stored in the executed chapters (``notebooks/*.ipynb`` of the source tree being built).

Config values (set under ``sphinx: config:`` in ``_config.yml``):
    mipeaks_banner: text after the version in the banner (what produced the numbers).
    mipeaks_switcher_url: where the switcher list is fetched from at view time.
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.util
import shutil
from pathlib import Path
from typing import Any

SIDEBAR = ["navbar-logo.html", "version-switcher", "search-button-field.html", "sbt-sidebar-nav.html"]


def stamp() -> tuple[str, str]:
    """``(version, "mipeaks <version>, commit <sha>")``."""
    from mipeaks.book import version_string
    from mipeaks.provenance import versions

    return str(versions(("mipeaks",))["mipeaks"]), version_string(short=True)


#: MathJax 2 settings for the local copy: the combined TeX/MathML config, and the math of
#: notebook cells processed although myst-nb marks their sections ``tex2jax_ignore``.
MATHJAX2 = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                "processClass": "tex2jax_process|mathjax_process|math|output_area",
                "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None},
    "showMathMenu": False,
    "messageStyle": "none",
}


def local_mathjax() -> Path | None:
    """The MathJax 2 folder of the installed ``jupyter-server-mathjax`` wheel, or None.

    Found without importing the package (which would import jupyter-server).
    """
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    for location in (spec.submodule_search_locations or []) if spec else []:
        static = Path(location) / "static"
        if (static / "MathJax.js").is_file():
            return static
    return None


def _config_inited(app: Any, config: Any) -> None:
    version, text = stamp()
    config.version = config.release = version
    built = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    opts = dict(config.html_theme_options or {})
    banner = html.escape(config.mipeaks_banner) if config.mipeaks_banner else ""
    opts["announcement"] = f"<b>{html.escape(text)}</b>" + (f" &middot; {banner}" if banner else "")
    opts["extra_footer"] = (f'<p class="mipeaks-stamp">Built from <code>{html.escape(text)}</code> '
                            f"on {built}.</p>")
    opts["switcher"] = {"json_url": config.mipeaks_switcher_url, "version_match": version}
    opts["check_switcher"] = False  # the list is fetched by the browser; tests/test_book.py validates it
    opts["show_version_warning_banner"] = False
    config.html_theme_options = opts
    config.html_sidebars = {"**": SIDEBAR}
    if local_mathjax() is not None:
        config.mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
        config.mathjax2_config = MATHJAX2
        config.mathjax3_config = None


def _copy_mathjax(app: Any, exception: Exception | None) -> None:
    source = local_mathjax()
    if exception is None and source is not None and app.builder.format == "html":
        shutil.copytree(source, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _claims_directive() -> type:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class ClaimsDirective(SphinxDirective):
        """``{mipeaks-claims}``: the overview table, parsed as Markdown in place."""

        has_content = False

        def run(self) -> list[Any]:
            from mipeaks.overview import claims_markdown

            notebooks = Path(self.env.srcdir) / "notebooks"
            for path in sorted(notebooks.glob("*.ipynb")):  # rebuild the page when a chapter changes
                self.env.note_dependency(str(path))
            container = nodes.container(classes=["mipeaks-claims"])
            text = claims_markdown(notebooks).splitlines()
            self.state.nested_parse(StringList(text, source="mipeaks-claims"), self.content_offset, container)
            return [container]

    return ClaimsDirective


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("mipeaks-claims", _claims_directive())
    app.add_config_value("mipeaks_banner", "", "html")
    app.add_config_value("mipeaks_switcher_url", "switcher.json", "html")
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""mkdocs hook: publish the notebooks of ``notebooks/`` as pages, without copying them.

* ``on_files`` adds every ``notebooks/*.ipynb`` of the repository to the site's files, under
  ``notebooks/`` (so ``nav`` and Markdown links name them ``notebooks/<name>.ipynb``). It runs
  before mkdocs-jupyter's ``on_files``, which then turns them into pages.
* ``on_page_content`` rewrites the links between notebooks (``pool.ipynb``, which work in
  Jupyter) to the URLs of their pages on the site.
* ``on_page_markdown`` turns links from a page to repository files outside ``docs/`` (such as
  ``[bench/README.md](../bench/README.md)`` in ``performance.md``, which work when the file is
  read on GitHub) into the file's path in code, since the site does not contain those files.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
_LINK = re.compile(r'href="(?!https?:|/|#)([\w\-]+)\.ipynb(#[^"]*)?"')
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


@event_priority(100)
def on_files(files: Files, config: Any) -> Files:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    if not page.file.src_uri.startswith("notebooks/") or not page.file.src_uri.endswith(".ipynb"):
        return html

    def to_page(m: re.Match[str]) -> str:
        target = files.get_file_from_path(f"notebooks/{m.group(1)}.ipynb")
        if target is None:
            return m.group(0)
        return f'href="{target.url_relative_to(page.file)}{m.group(2) or ""}"'

    return _LINK.sub(to_page, html)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    base = posixpath.dirname(page.file.src_uri)

    def outside(m: re.Match[str]) -> str:
        text, target = m.group(1), m.group(2)
        if "://" in target or target.startswith(("#", "/", "mailto:")):
            return m.group(0)
        path = posixpath.normpath(posixpath.join("docs", base, target.split("#", 1)[0]))
        if path.startswith(("docs/", "notebooks/")) or not (ROOT / path).exists():
            return m.group(0)  # a page of the site (or a broken link mkdocs will report)
        return text if path in text else f"{text} (`{path}`)"

    return _MD_LINK.sub(outside, markdown)

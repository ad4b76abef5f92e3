"""Page helpers: write a notebook, open it in JupyterLab, run it, read what the page shows.

Everything read here is read from the rendered DOM (what a person sees): the cells' input
prompts (``[*]:`` while running), the toolbar's execution indicator, and the views' HTML
(classes ``sknb-*`` from ``suitkaise_nb.notebook._render``). The app object
(``--LabApp.expose_app_in_browser``) is used only to issue commands (Run All) and as a
second opinion on the kernel's status.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

# One JS function that reads the notebook on screen: per cell, its prompt and the views in it.
READ_JS = r"""
() => {
  const txt = (el) => (el ? el.textContent.replace(/\s+/g, ' ').trim() : null);
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return { cells: [], indicator: null, kernel: null };
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell')];
  const out = cells.map((cell, i) => {
    const procs = [...cell.querySelectorAll('.sknb-process-view')].map((v) => {
      const imgs = [...v.querySelectorAll('img')].filter((im) => {
        const src = im.getAttribute('src') || '';
        return (src.startsWith('data:') || src.startsWith('blob:')) && im.offsetParent !== null
          && im.naturalWidth > 0;
      });
      const log = v.querySelector('details.sknb-log > summary');
      const buttons = [...v.querySelectorAll('button')].map((b) => ({
        text: txt(b), disabled: b.disabled }));
      return {
        progress: txt(v.querySelector('.sknb-progress')),
        state: txt(v.querySelector('.sknb-state')),
        log: txt(log),
        log_rows: v.querySelectorAll('details.sknb-log > div').length,
        result: txt(v.querySelector('.sknb-result')),
        output: txt(v.querySelector('details.sknb-output pre')),
        images: imgs.length,
        buttons,
      };
    });
    const buttons = (v) => [...v.querySelectorAll('button')]
      .filter((b) => b.offsetParent !== null)
      .map((b) => ({ text: txt(b), disabled: b.disabled }));
    const pools = [...cell.querySelectorAll('.sknb-pool-view')].map((v) => ({
      progress: txt(v.querySelector('.sknb-pool-progress')),
      state: txt(v.querySelector('.sknb-state')),
      text: txt(v),
      images: [...v.querySelectorAll('img')].filter((im) =>
        /^(data|blob):/.test(im.getAttribute('src') || '') && im.offsetParent !== null).length,
      buttons: buttons(v),
    }));
    // the dashboard: one row (a box with Stop and Kill) per process
    const dashboards = [...cell.querySelectorAll('.sknb-dashboard')].map((v) => ({
      text: txt(v),
      rows: [...v.querySelectorAll('.widget-hbox')].filter((r) => r.querySelector('button'))
        .map((r) => ({ text: txt(r), buttons: buttons(r) })),
    }));
    return {
      index: i,
      prompt: txt(cell.querySelector('.jp-InputArea-prompt')),
      text: txt(cell.querySelector('.jp-Cell-outputWrapper')) || '',
      procs,
      pools,
      dashboards,
    };
  });
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  let kernel = null;
  try {
    const w = window.jupyterapp.shell.currentWidget;
    kernel = w.sessionContext.session.kernel.status;
  } catch (e) { kernel = null; }
  // JupyterLab's status bar item "Python 3 (ipykernel) | Busy" (Notebook 7 has none)
  const item = [...document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem')]
    .map((e) => txt(e)).find((t) => t && t.includes(' | '));
  const statusbar = item ? item.split(' | ').pop() : null;
  return { cells: out, indicator: ind ? ind.getAttribute('data-status') : null, kernel, statusbar };
}
"""


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))


def read(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(READ_JS)
    return result


def running(state: dict[str, Any]) -> bool:
    return any(c["prompt"] and "[*]" in c["prompt"] for c in state["cells"])


def idle(state: dict[str, Any]) -> bool:
    return state["kernel"] == "idle" and state["indicator"] in (None, "idle")


def notebook7_url(server: Any, notebook: str) -> str:
    """The same notebook in Notebook 7 (served by the same server as JupyterLab)."""
    return f"{server.url}/notebooks/{notebook}?token={server.token}"


def open_notebook(page: Any, url: str, timeout: float = 60.0) -> dict[str, Any]:
    """Open a notebook and wait for its kernel to be idle (started and connected)."""
    page.goto(url, timeout=timeout * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    return wait_for(page, lambda s: idle(s) and bool(s["cells"]), timeout, "kernel idle")


def run_all(page: Any) -> None:
    """Run All, the same command as Run ▸ Run All Cells; not awaited (mid-run reads)."""
    page.evaluate(
        "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"
    )


def hide_left_sidebar(page: Any) -> None:
    page.evaluate(
        "() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }"
    )


def scroll_into_view(page: Any, selector: str) -> None:
    """Scroll the first element matching ``selector`` so its bottom is on screen."""
    page.evaluate(
        "(sel) => { const el = document.querySelector(sel); "
        "if (el) el.scrollIntoView({block: 'end'}); }",
        selector,
    )


def wait_for(page: Any, pred: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    state = read(page)
    while not pred(state):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; page: {state}"
            )
        time.sleep(every)
        state = read(page)
    return state


def done(state: dict[str, Any]) -> bool:
    """Completion as DESIGN.md §4 says: no ``[*]`` prompt and the kernel idle, every cell run."""
    return (
        not running(state)
        and idle(state)
        and all(c["prompt"] and c["prompt"] not in ("[ ]:", "[]:") for c in state["cells"])
    )


def number(pattern: str, text: str | None) -> int | None:
    """The integer of ``pattern``'s first group in ``text``, or None."""
    m = re.search(pattern, text or "")
    return int(m.group(1)) if m else None


def shutdown_kernels(server: Any) -> None:
    """Shut every kernel of the server down through its REST API (as Kernel ▸ Shut Down)."""
    headers = {"Authorization": f"token {server.token}"}
    with urllib.request.urlopen(
        urllib.request.Request(f"{server.url}/api/kernels", headers=headers), timeout=10
    ) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(
            f"{server.url}/api/kernels/{k['id']}", method="DELETE", headers=headers
        )
        urllib.request.urlopen(req, timeout=30).close()


def cell(page: Any, index: int) -> Any:
    """A locator for the ``index``-th code cell of the notebook on screen."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-CodeCell").nth(index)


def click_button(page: Any, index: int, view: str, label: str) -> None:
    """Click the button labelled ``label`` in the first ``view`` (CSS class) of cell ``index``."""
    # the accessible name also holds the icon's glyph: match the text instead
    pattern = re.compile(rf"^\s*{re.escape(label)}\s*$")
    cell(page, index).locator(f"{view} button", has_text=pattern).first.click()

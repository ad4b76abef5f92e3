"""IPython magics: ``%%skprocess`` and the line magics. Thin: parse, call the public API.

``%%skprocess [options]``
    Run the cell as an Skprocess in a child process and show its live view. Sections are
    marked by comment lines ``# %% prerun``, ``# %% run``, ``# %% postrun``,
    ``# %% onfinish``, ``# %% result`` and ``# %% error``; code before the first marker is
    setup, run once in the child; a cell with no marker is one ``run`` section. Names
    assigned in one run are there in the next; ``tell``, ``listen``, ``stop`` and
    ``current_run`` are provided. A ``result`` section's last expression (or ``--result``)
    is the result; in an ``error`` section, ``error`` is the failure.

``%%skprocess MyProc(args)``
    Run the cell here (it defines classes), then start ``MyProc(args)`` with its view.

``%sklist`` · ``%skstop NAME`` · ``%skkill NAME`` · ``%skdashboard``
"""

from __future__ import annotations

import ast
import builtins
import itertools
import re
import types
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .. import processing
from ._cellproc import SECTIONS, cell_class

_MARKER = re.compile(r"^\s*#\s*%%\s*(\w+)\s*$")
_counter = itertools.count(1)
_SKIP = {"In", "Out", "get_ipython", "exit", "quit", "_", "__", "___"}


def split_sections(cell: str) -> dict[str, tuple[int, str]]:
    """Map section name → (first line number in the cell, code)."""
    sections: dict[str, list[str]] = {}
    starts: dict[str, int] = {}
    current = "setup"
    starts[current] = 1
    sections[current] = []
    saw_marker = False
    for lineno, line in enumerate(cell.splitlines(), start=1):
        m = _MARKER.match(line)
        if m:
            name = m.group(1).lower()
            if name not in SECTIONS or name == "setup":
                raise ValueError(
                    f"line {lineno}: unknown section marker {line.strip()!r}; use one of "
                    + ", ".join(f"'# %% {s}'" for s in SECTIONS if s != "setup")
                )
            if name in sections and name != current:
                raise ValueError(f"line {lineno}: section {name!r} appears twice")
            saw_marker = True
            current = name
            starts[name] = lineno + 1
            sections.setdefault(name, [])
            continue
        sections[current].append(line)
    if not saw_marker:
        return {"run": (1, cell)}
    return {
        name: (starts[name], "\n".join(lines))
        for name, lines in sections.items()
        if "\n".join(lines).strip()
    }


def names_read(code: str) -> set[str]:
    """Every name the code loads (a superset of what it needs from outside)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@magics_class
class SkMagics(Magics):
    @property
    def _shell(self) -> Any:
        shell = self.shell
        if shell is None:
            raise RuntimeError("the suitkaise_nb magics need an IPython shell")
        return shell

    @magic_arguments()
    @argument("launch", nargs="*", help="MyProc(args): define-and-launch form")
    @argument("--runs", type=int, default=None, help="number of runs (default 1)")
    @argument("--join-in", type=float, default=None, help="stop after this many seconds")
    @argument("--lives", type=int, default=None, help="total attempts (default 1)")
    @argument("--timeout", type=float, default=None, help="timeout of each run, in seconds")
    @argument("--name", default=None, help="bind the process handle to this name")
    @argument("--bg", action="store_true", help="return at once; the cell does not block")
    @argument("--ship", default=None, help="comma-separated notebook variables to send")
    @argument("--result", default=None, help="expression evaluated in the child at the end")
    @cell_magic
    def skprocess(self, line: str, cell: str) -> Any:
        """Run the cell as an Skprocess in a child process (see the module docstring)."""
        args = parse_argstring(self.skprocess, line)
        args.result = _unquote(args.result)
        args.ship = _unquote(args.ship)
        if args.name and not args.name.isidentifier():
            raise ValueError(f"--name must be a Python identifier, got {args.name!r}")
        shell = self._shell
        user_ns = shell.user_ns
        if args.launch:
            shell.run_cell(cell, store_history=False)
            expr = " ".join(args.launch)
            proc = eval(expr, user_ns)
            if not isinstance(proc, processing.Skprocess):
                raise TypeError(f"{expr} is a {type(proc).__name__}, not an Skprocess instance")
        else:
            proc = self._cell_process(cell, args, user_ns)
        cfg = proc.process_config
        if args.runs is not None:
            cfg.runs = args.runs
        if args.join_in is not None:
            cfg.join_in = args.join_in
        if args.lives is not None:
            cfg.lives = args.lives
        if args.timeout is not None:
            cfg.timeouts.run = args.timeout
        if args.name:
            user_ns[args.name] = proc
        proc.start()
        if args.bg:
            return proc
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            raise
        return proc.result()

    def _cell_process(self, cell: str, args: Any, user_ns: dict[str, Any]) -> Any:
        sections = split_sections(cell)
        n = next(_counter)
        filename = f"<skprocess cell {n}>"
        if args.ship is not None:
            wanted = [s.strip() for s in args.ship.split(",") if s.strip()]
            missing = [w for w in wanted if w not in user_ns]
            if missing:
                raise NameError(f"--ship names variables that do not exist: {', '.join(missing)}")
        else:
            wanted = sorted(
                name
                for name in names_read(cell) | names_read(args.result or "")
                if name in user_ns
                and name not in _SKIP
                and not name.startswith("_")
                and not hasattr(builtins, name)
            )
        shipped: dict[str, Any] = {}
        modules: dict[str, str] = {}
        for name in wanted:
            value = user_ns[name]
            if isinstance(value, types.ModuleType):
                modules[name] = value.__name__
            else:
                shipped[name] = value
        _check_shippable(shipped)
        # the view, %sklist and tracebacks call it by the name it is bound to (--name)
        cls = cell_class(set(sections), args.name or f"SkprocessCell{n}")
        proc = cls(sections, filename, cell, shipped, modules, args.result)
        if args.runs is None:
            proc.process_config.runs = 1
        return proc

    @line_magic
    def sklist(self, line: str) -> Any:
        """A table of this kernel's processes and pools (live and recent)."""
        from IPython.display import HTML

        from . import _kernel, _render
        from ._snapshot import pool_snapshot, process_snapshot

        procs, pools, _shares, _timers = _kernel.bridge().inventory()
        rows = []
        names = {id(v): k for k, v in self._shell.user_ns.items() if not k.startswith("_")}
        for m in procs:
            handle = m.handle_ref() if m.handle_ref is not None else None
            s = process_snapshot(m)
            rows.append(
                [
                    names.get(id(handle), ""),
                    s.name,
                    s.pid,
                    _render.badge(s.state),
                    _render.progress_text(s.run, s.runs, s.elapsed, s.join_in),
                    _render.fmt_seconds(s.elapsed),
                ]
            )
        for m in pools:
            ps = pool_snapshot(m)
            rows.append(["", "Pool", "", _render.badge(ps.state), f"{ps.done} items", ""])
        header = ("name", "class", "pid", "state", "progress", "elapsed")
        return HTML(_render.table(header, rows, "sknb-list"))

    def _lookup(self, name: str) -> Any:
        name = name.strip()
        if not name:
            raise ValueError("give the name the process is bound to, e.g. %skstop worker")
        try:
            obj = eval(name, self._shell.user_ns)
        except NameError:
            raise NameError(f"no variable named {name!r} in the notebook") from None
        if not hasattr(obj, "stop") or not hasattr(obj, "kill"):
            raise TypeError(f"{name} is a {type(obj).__name__}, not an Skprocess")
        return obj

    @line_magic
    def skstop(self, line: str) -> None:
        """Gracefully stop the named process (``%skstop worker``); says what it stopped."""
        proc = self._lookup(line)
        before = _describe(proc)
        proc.stop()
        print(f"stopping {line.strip()} ({before}): it ends after its current section")

    @line_magic
    def skkill(self, line: str) -> None:
        """Kill the named process at once (``%skkill worker``); says what it killed."""
        proc = self._lookup(line)
        before = _describe(proc)
        proc.kill()
        print(f"killed {line.strip()} ({before})")

    @line_magic
    def skdashboard(self, line: str) -> Any:
        """Show the live dashboard of every process, pool, share and timer."""
        from . import _kernel

        _kernel.dashboard()


def _describe(proc: Any) -> str:
    """``Crawler, pid 123, running, run 58/400`` (for what the line magics print)."""
    model = getattr(proc, "model", None)
    if model is None:
        return f"{type(proc).__name__}, not started"
    runs = model.runs if model.runs is not None else "∞"
    return f"{model.name}, pid {model.pid}, {model.state}, run {model.run}/{runs}"


def _unquote(value: str | None) -> str | None:
    """IPython's argument splitter keeps quotes: ``--result "a + 1"`` gives '"a + 1"'."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _check_shippable(shipped: dict[str, Any]) -> None:
    from .._engine import _serial
    from .._errors import ShippingError

    for name, value in shipped.items():
        try:
            _serial.dumps(value, what=name)
        except ShippingError as exc:
            raise ShippingError(
                f"notebook variable {name!r} cannot be sent to the process: "
                f"{str(exc).rstrip('.')}. Leave it out with --ship, or create it inside the cell",
                path=name,
                type_name=exc.type_name,
            ) from None

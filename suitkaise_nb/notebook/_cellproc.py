"""The Skprocess behind ``%%skprocess``: a cell's code, split into lifecycle sections.

Runs in the child, so it imports only the core. The cell's sections are compiled there with
a filename of their own, padded so that line numbers are the cell's line numbers, and the
cell's source is registered with ``linecache`` so that tracebacks show the cell's lines.

All sections share one namespace: names assigned in one run are there in the next. The names
``tell``, ``listen``, ``stop`` and ``current_run`` are provided.
"""

from __future__ import annotations

import ast
import importlib
import linecache
from typing import Any

from .._engine._process import Skprocess
from .._sections import SECTIONS as LIFECYCLE

SECTIONS = ("setup", *LIFECYCLE)  # a cell's sections: setup code, then the lifecycle


class CellProcess(Skprocess):
    """Subclassed per cell (with only the sections the cell has) by the magic."""

    def __init__(
        self,
        sections: dict[str, tuple[int, str]],
        filename: str,
        source: str,
        shipped: dict[str, Any],
        modules: dict[str, str],
        result_expr: str | None,
    ) -> None:
        self.sections = sections
        self.filename = filename
        self.source = source
        self.shipped = shipped
        self.modules = modules
        self.result_expr = result_expr
        self._ns: dict[str, Any] | None = None
        self._code: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_ns"] = None
        state["_code"] = {}
        return state

    # -- child side ------------------------------------------------------------------------------
    def _namespace(self) -> dict[str, Any]:
        if self._ns is None:
            lines = self.source.splitlines(keepends=True)
            linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)
            ns: dict[str, Any] = {"__name__": "__skprocess__", "__builtins__": __builtins__}
            for name, module in self.modules.items():
                ns[name] = importlib.import_module(module)
            ns.update(self.shipped)
            ns["tell"] = self.tell
            ns["listen"] = self.listen
            ns["stop"] = self.stop
            ns["current_run"] = self._current_run
            self._ns = ns
            self._exec("setup")
        return self._ns

    def _compiled(self, section: str, mode: str = "exec") -> Any:
        key = (section, mode)
        code = self._code.get(key)  # type: ignore[call-overload]
        if code is None:
            first, text = self.sections[section]
            padded = "\n" * (first - 1) + text
            code = compile(padded, self.filename, mode)
            self._code[key] = code  # type: ignore[index]
        return code

    def _exec(self, section: str) -> Any:
        if section not in self.sections:
            return None
        ns = self._namespace()
        ns["current_run"] = self._current_run
        if section in ("result", "error"):
            return self._exec_with_value(section, ns)
        exec(self._compiled(section), ns)
        return None

    def _exec_with_value(self, section: str, ns: dict[str, Any]) -> Any:
        """Like a notebook cell: the value of a trailing expression is the section's value."""
        first, text = self.sections[section]
        tree = ast.parse("\n" * (first - 1) + text, self.filename)
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()
            exec(compile(tree, self.filename, "exec"), ns)
            expr = ast.Expression(last.value)
            return eval(compile(expr, self.filename, "eval"), ns)
        exec(compile(tree, self.filename, "exec"), ns)
        return None

    def _final_result(self) -> Any:
        if "result" in self.sections:
            return self._exec("result")
        if self.result_expr:
            return eval(self.result_expr, self._namespace())
        return None


def _section(name: str) -> Any:
    def method(self: CellProcess) -> Any:
        if name == "prerun":
            self._namespace()  # the setup code runs once, before the first prerun
        if name == "result":
            self._namespace()
            return self._final_result()
        if name == "error":
            ns = self._namespace()
            ns["error"] = self.error
            return self._exec("error")
        return self._exec(name)

    method.__name__ = f"__{name}__"
    return method


def cell_class(section_names: set[str], label: str) -> type[CellProcess]:
    """A CellProcess subclass with exactly the lifecycle sections the cell uses."""
    attrs: dict[str, Any] = {"__module__": __name__, "__qualname__": label}
    attrs["__prerun__"] = _section("prerun")  # always: it runs the setup code first
    for name in ("run", "postrun", "onfinish", "error"):
        if name in section_names:
            attrs[f"__{name}__"] = _section(name)
    attrs["__result__"] = _section("result")
    return type(label, (CellProcess,), attrs)

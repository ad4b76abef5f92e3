"""Parse the vendored seed (``processing-examples.md``) into runnable examples.

An example is one fenced ``python`` block, identified by its top-level section (``## ...``,
e.g. "Basic `Skprocess`") and its title (the ``### ...`` heading above it; the two "Full-on"
sections have no ``###`` heading, their title is the section title). The code is returned
with ``suitkaise`` renamed to ``suitkaise_nb`` in imports, ready to run as a script.

``notebook_cells`` splits an example the way a notebook user would type it (see its
docstring); ``slug``/``example_id`` give stable pytest ids such as
``basic-simple-counter-process``.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent
SEED_FILE = SEED_DIR / "processing-examples.md"
# The shared copy the vendored file must stay identical to (absent in a fresh clone).
SHARED_SEED_FILE = SEED_DIR.parents[2] / "shared" / "seed" / "processing-examples.md"

# Short, stable id prefixes for the top-level sections.
SECTION_SLUGS: dict[str, str] = {
    "Basic `Skprocess`": "basic",
    "`Pool`": "pool",
    "`Share`": "share",
    "`Pipe`": "pipe",
    "`Skprocess.tell()` and `Skprocess.listen()`": "tell-listen",
    "`autoreconnect`": "autoreconnect",
    "Full-on distributed task queue": "full-on-distributed-task-queue",
    "Full-on data streaming pipeline": "full-on-data-streaming-pipeline",
}


@dataclass(frozen=True)
class Example:
    section: str  # e.g. "Basic `Skprocess`"
    title: str  # e.g. "Simple Counter Process"
    code: str  # renamed to suitkaise_nb, ready to run
    line: int  # 1-based line of the opening fence in the markdown

    @property
    def key(self) -> tuple[str, str]:
        return (self.section, self.title)

    @property
    def id(self) -> str:
        return example_id(self.section, self.title)


def slug(text: str) -> str:
    """``"Using `run()`"`` -> ``"using-run"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def example_id(section: str, title: str) -> str:
    prefix = SECTION_SLUGS.get(section, slug(section))
    if title == section:
        return prefix
    return f"{prefix}-{slug(title)}"


_IMPORT_RE = re.compile(r"^(\s*)(from|import)(\s+)suitkaise(?=[\s.,]|$)", re.MULTILINE)


def rename_imports(code: str) -> str:
    """``from suitkaise.x import y`` / ``from suitkaise import z`` / ``import suitkaise``."""
    return _IMPORT_RE.sub(r"\1\2\3suitkaise_nb", code)


def parse_examples(text: str) -> list[Example]:
    examples: list[Example] = []
    section: str | None = None
    title: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
            title = None
        elif line.startswith("### "):
            title = line[4:].strip()
        elif line.strip() == "```python":
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"unterminated code fence at line {start + 1}")
            if section is None:
                raise ValueError(f"code block outside any section at line {start + 1}")
            examples.append(
                Example(
                    section=section,
                    title=title if title is not None else section,
                    code=rename_imports("\n".join(body) + "\n"),
                    line=start + 1,
                )
            )
        i += 1
    keys = [e.key for e in examples]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ValueError(f"several code blocks under one heading: {sorted(dupes)}")
    return examples


@cache
def load_examples() -> tuple[Example, ...]:
    return tuple(parse_examples(SEED_FILE.read_text(encoding="utf-8")))


# ------------------------------------------------------------------------------------------
# notebook cells
# ------------------------------------------------------------------------------------------


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or node.orelse:
        return False
    t = node.test
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and len(t.ops) == 1
        and isinstance(t.ops[0], ast.Eq)
        and len(t.comparators) == 1
        and isinstance(t.comparators[0], ast.Constant)
        and t.comparators[0].value == "__main__"
    )


def _asyncio_run_arg(node: ast.stmt) -> ast.expr | None:
    """The ``X`` of a top-level ``asyncio.run(X)`` / ``y = asyncio.run(X)`` statement."""
    value: ast.expr | None = None
    if isinstance(node, ast.Expr | ast.Assign | ast.AnnAssign):
        value = node.value
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "run"
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id == "asyncio"
        and len(value.args) == 1
        and not value.keywords
    ):
        return value
    return None


def _strip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def notebook_cells(code: str) -> list[str]:
    """Split a script into the cells a notebook user would type.

    * every top-level ``class``/``def`` (with its decorators and the comment lines directly
      above it) is a cell of its own;
    * the other top-level statements between them are one cell, typed as written (comments
      and blank lines between them kept);
    * a top-level ``asyncio.run(X)`` becomes ``await X`` (IPython's top-level await);
    * an ``if __name__ == "__main__":`` guard is dropped and its body dedented and typed the
      same way (so a ``def`` inside the guard gets its own cell too).
    """
    tree = ast.parse(code)
    lines = code.splitlines()
    for node in tree.body:
        _rewrite_asyncio_run(lines, node)
    cells: list[list[str]] = []
    group: list[int] | None = None  # [first, end) line span of the current statement cell
    prev_end = 0

    def flush() -> None:
        nonlocal group
        if group is not None:
            cells.append(lines[group[0] : group[1]])
            group = None

    for node in tree.body:
        is_block = isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        first = node.lineno - 1
        if is_block:
            decorators = getattr(node, "decorator_list", [])
            first = min([first, *[d.lineno - 1 for d in decorators]])
        end = node.end_lineno if node.end_lineno is not None else node.lineno
        # comment lines directly above a node belong to it
        while first > prev_end and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        prev_end = end
        if is_block:
            flush()
            cells.append(lines[first:end])
        elif _is_main_guard(node):
            flush()
            assert isinstance(node, ast.If)
            body = textwrap.dedent("\n".join(lines[node.body[0].lineno - 1 : end]))
            cells.extend(c.splitlines() for c in notebook_cells(body + "\n"))
        elif group is None:
            group = [first, end]
        else:
            group[1] = end
    flush()
    stripped = (_strip_blank(c) for c in cells)
    return ["\n".join(c) for c in stripped if c]


def _rewrite_asyncio_run(lines: list[str], node: ast.stmt) -> None:
    """Turn a top-level ``asyncio.run(X)`` in ``node`` into ``await X``, in place."""
    call = _asyncio_run_arg(node)
    if call is None or call.lineno != call.end_lineno:
        return
    assert isinstance(call, ast.Call)
    arg = call.args[0]
    idx = call.lineno - 1
    line = lines[idx]
    # col offsets are UTF-8 byte offsets; the seed's code lines are ASCII
    arg_src = line[arg.col_offset : arg.end_col_offset]
    lines[idx] = line[: call.col_offset] + f"await {arg_src}" + line[call.end_col_offset :]


# ------------------------------------------------------------------------------------------
# output checks
# ------------------------------------------------------------------------------------------
#
# An output is checked as a list of lines (trailing whitespace stripped, blank lines dropped).
# Each check *claims* the lines it matches, in the order the checks are listed; with
# ``Expect.complete`` every line must end up claimed, so nothing unexpected was printed.

Where = Callable[[re.Match[str]], bool]


@dataclass(frozen=True)
class Pat:
    """One line: exact text (``L``) or a full-match regex (``R``) with an optional predicate."""

    text: str | None = None
    regex: re.Pattern[str] | None = None
    where: Where | None = None
    note: str = ""

    def match(self, line: str) -> bool:
        if self.text is not None:
            return line == self.text
        assert self.regex is not None
        m = self.regex.fullmatch(line)
        return m is not None and (self.where is None or bool(self.where(m)))

    def __str__(self) -> str:
        if self.text is not None:
            return repr(self.text)
        assert self.regex is not None
        extra = f" where {self.note}" if self.note else (" (with predicate)" if self.where else "")
        return f"/{self.regex.pattern}/{extra}"


def L(text: str) -> Pat:
    """An exact line (compared after stripping trailing whitespace)."""
    return Pat(text=text.rstrip())


def R(regex: str, where: Where | None = None, note: str = "") -> Pat:
    """A line fully matching ``regex``; ``where(match)`` must hold too when given."""
    return Pat(regex=re.compile(regex), where=where, note=note)


class Claims:
    """The lines of an output and which of them checks have claimed so far."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.claimed = [False] * len(lines)

    def find(self, pat: Pat, start: int = 0) -> int | None:
        for i in range(start, len(self.lines)):
            if not self.claimed[i] and pat.match(self.lines[i]):
                return i
        return None


class Check:
    def apply(self, out: Claims) -> list[str]:  # pragma: no cover - interface
        """Claim lines; return the problems found (empty when the check passes)."""
        raise NotImplementedError


@dataclass(frozen=True)
class InOrder(Check):
    """These lines appear in this order (other lines may sit between them)."""

    pats: tuple[Pat, ...]

    def __init__(self, *pats: Pat) -> None:
        object.__setattr__(self, "pats", pats)

    def apply(self, out: Claims) -> list[str]:
        pos = 0
        for n, pat in enumerate(self.pats):
            i = out.find(pat, pos)
            if i is None:
                where = "at all" if out.find(pat) is None else "after the previous expected line"
                done = [str(p) for p in self.pats[:n]]
                return [f"expected line {pat} not found {where} (ordered; matched so far: {done})"]
            out.claimed[i] = True
            pos = i + 1
        return []


@dataclass(frozen=True)
class AnyOrder(Check):
    """Each of these lines appears once, in any order (concurrent writers)."""

    pats: tuple[Pat, ...]

    def __init__(self, *pats: Pat) -> None:
        object.__setattr__(self, "pats", pats)

    def apply(self, out: Claims) -> list[str]:
        problems = []
        for pat in self.pats:
            i = out.find(pat)
            if i is None:
                problems.append(f"expected line {pat} not found (any order)")
            else:
                out.claimed[i] = True
        return problems


@dataclass(frozen=True)
class Each(Check):
    """Claims every still-unclaimed line matching ``pat``; their number is in [least, most]."""

    pat: Pat
    least: int = 0
    most: int | None = None

    def apply(self, out: Claims) -> list[str]:
        n = 0
        while (i := out.find(self.pat)) is not None:
            out.claimed[i] = True
            n += 1
        if n < self.least or (self.most is not None and n > self.most):
            bound = f"{self.least}..{'' if self.most is None else self.most}"
            return [f"expected {bound} lines matching {self.pat}, found {n}"]
        return []


@dataclass(frozen=True)
class Block(Check):
    """Lines from ``first`` to ``last`` (inclusive, in order) are claimed as one block, whatever
    lies between; the block's text must contain a match of every regex in ``contains``."""

    first: Pat
    last: Pat
    contains: tuple[str, ...] = ()

    def apply(self, out: Claims) -> list[str]:
        i = out.find(self.first)
        if i is None:
            return [f"expected a line {self.first} (start of a block)"]
        j = out.find(self.last, i + 1)
        if j is None:
            return [f"expected a line {self.last} after {self.first}"]
        for k in range(i, j + 1):
            out.claimed[k] = True
        text = "\n".join(out.lines[i : j + 1])
        return [
            f"block {self.first}..{self.last} does not contain /{rx}/"
            for rx in self.contains
            if not re.search(rx, text)
        ]


@dataclass(frozen=True)
class Holds(Check):
    """A fact about the whole output: ``fn(lines)`` returns None when it holds, else why not."""

    fn: Callable[[list[str]], str | None]
    note: str

    def apply(self, out: Claims) -> list[str]:
        try:
            why = self.fn(out.lines)
        except Exception as e:  # a broken output must read as a failed fact, not a crash
            why = f"{type(e).__name__}: {e}"
        return [] if why is None else [f"{self.note}: {why}"]


@dataclass(frozen=True)
class Expect:
    """What one example must print.

    ``stdout``: checks over stdout; with ``complete`` every non-blank stdout line must be
    claimed by a check. ``stderr``: checks over stderr (e.g. a promised warning).
    ``stderr_allowed``: regexes for Python warning lines (``file:line: XWarning: msg``) that
    may appear on stderr (the warning's source-line echo goes with it); anything else on
    stderr fails. ``postscript``: code appended to the example (its own last cell in a
    kernel) to expose values the example computes but does not print; its lines start with
    ``[seed-check]``. ``timeout``: hard limit for the whole example, in seconds.
    """

    stdout: tuple[Check, ...] = ()
    complete: bool = True
    stderr: tuple[Check, ...] = ()
    stderr_allowed: tuple[str, ...] = ()
    postscript: str | None = None
    timeout: float = 60.0


def output_lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


_WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning: .*$")


def residual_stderr(text: str, allowed: tuple[str, ...]) -> str:
    """``text`` without the allowed Python warnings (and the source lines echoed under them)."""
    pats = [re.compile(a) for a in allowed]
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = bool(_WARNING_LINE.match(line)) and any(p.search(line) for p in pats)
        if not skipping:
            kept.append(line)
    return "\n".join(kept).strip()


def check_output(expect: Expect, stdout: str, stderr: str) -> list[str]:
    """All the ways ``stdout``/``stderr`` break ``expect`` (empty list: conforming)."""
    problems: list[str] = []
    out = Claims(output_lines(stdout))
    for check in expect.stdout:
        problems += check.apply(out)
    if expect.complete:
        extra = [ln for ln, c in zip(out.lines, out.claimed, strict=True) if not c]
        if extra:
            problems.append(f"unexpected stdout lines: {extra}")
    err = Claims(output_lines(stderr))
    for check in expect.stderr:
        problems += check.apply(err)
    residual = residual_stderr(stderr, expect.stderr_allowed)
    if residual:
        problems.append("unexpected stderr output (see below)")
    return problems


def report(title: str, problems: list[str], stdout: str, stderr: str, extra: str = "") -> str:
    """A failure message that shows everything the example printed."""
    parts = [f"{title}:", *[f"  - {p}" for p in problems]]
    if extra:
        parts += ["", extra.rstrip()]
    parts += ["", "----- stdout -----", stdout.rstrip(), "----- stderr -----", stderr.rstrip()]
    parts.append("------------------")
    return "\n".join(parts)

"""griffe extension: render the reST idioms of suitkaise_nb's docstrings as Markdown.

The docstrings are written for ``help()`` and Sphinx-like readers: literal blocks after ``::``
(diagrams, code), ``>>>`` examples, simple tables framed by ``====`` lines, and roles such as
``:class:`Sktimer```. Markdown would flatten the diagrams and read ``>>>`` as nested quotes, so
before mkdocstrings parses a docstring this extension turns

* a paragraph ending in ``::`` + its indented block  →  the paragraph (``:``) + a fenced block
  (``python`` when the block parses as Python, ``text`` otherwise);
* a run of ``>>>``/``...`` lines                     →  a fenced ``pycon`` block;
* a simple table (``===  ===`` borders)              →  a fenced ``text`` block, alignment kept;
* ``:role:`~a.b.C```                                 →  ```C``` (``:role:`a.b.C``` → ```a.b.C```).

Loaded by mkdocs.yml (``extensions:`` of the python handler); the library is not changed.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj|ref):`(~?)([^`]+)`")
_BORDER = re.compile(r"=+(?: +=+)+")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _role(m: re.Match[str]) -> str:
    target = m.group(2)
    if m.group(1):
        target = target.split(".")[-1]
    return f"`{target}`"


def _fence(block: list[str], indent: str) -> list[str]:
    body = textwrap.dedent("\n".join(block)).strip("\n")
    try:
        ast.parse(body)
        lang = "python"
    except SyntaxError:
        lang = "text"
    return [
        f"{indent}```{lang}",
        *(indent + ln if ln else "" for ln in body.split("\n")),
        f"{indent}```",
    ]


def convert(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        pad = line[: _indent(line)]
        if stripped.startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip().startswith((">>>", "...")):
                block.append(lines[i])
                i += 1
            body = textwrap.dedent("\n".join(block))
            out += [f"{pad}```pycon", *(pad + ln for ln in body.split("\n")), f"{pad}```"]
            continue
        if _BORDER.fullmatch(stripped):
            block, borders = [], 0
            while i < len(lines) and borders < 3:
                if _BORDER.fullmatch(lines[i].strip()):
                    borders += 1
                block.append(lines[i])
                i += 1
            body = textwrap.dedent("\n".join(block))
            out += [
                f"{pad}```text",
                *(pad + ln if ln else "" for ln in body.split("\n")),
                f"{pad}```",
            ]
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            head = line.rstrip()[:-2]
            if head.strip():
                out.append(head.rstrip() + ("" if head.endswith(" ") else ":"))
            base = _indent(line)
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out.append("")
            out += _fence(block, pad)
            out.append("")
            continue
        out.append(_ROLE.sub(_role, line))
        i += 1
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)

"""The vendored seed and the EXPECTED table: consistent, complete, no processes started."""

from __future__ import annotations

import ast

import pytest

from expected import ALL_SECTIONS, EXPECTED, SECTIONS_ENABLED
from seedlib import (
    SEED_FILE,
    SHARED_SEED_FILE,
    AnyOrder,
    Block,
    Each,
    Expect,
    Holds,
    InOrder,
    L,
    R,
    check_output,
    load_examples,
    notebook_cells,
    parse_examples,
    rename_imports,
    residual_stderr,
)


def test_vendored_seed_is_identical_to_shared_copy() -> None:
    if not SHARED_SEED_FILE.exists():
        pytest.skip(f"{SHARED_SEED_FILE} not present (fresh clone)")
    assert SEED_FILE.read_bytes() == SHARED_SEED_FILE.read_bytes(), (
        f"{SEED_FILE} differs from {SHARED_SEED_FILE}: re-vendor it"
    )


def test_seed_parses_into_the_known_sections() -> None:
    examples = load_examples()
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.section] = counts.get(ex.section, 0) + 1
    assert list(counts) == list(ALL_SECTIONS)
    assert counts == {
        "Basic `Skprocess`": 10,
        "`Pool`": 12,
        "`Share`": 7,
        "`Pipe`": 3,
        "`Skprocess.tell()` and `Skprocess.listen()`": 2,
        "`autoreconnect`": 2,
        "Full-on distributed task queue": 1,
        "Full-on data streaming pipeline": 1,
    }
    ids = [ex.id for ex in examples]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "basic-simple-counter-process"


def test_every_example_has_an_expectation_and_vice_versa() -> None:
    ids = {ex.id for ex in load_examples()}
    assert ids - EXPECTED.keys() == set(), "examples without an EXPECTED entry"
    assert EXPECTED.keys() - ids == set(), "EXPECTED entries for no example"
    assert SECTIONS_ENABLED <= set(ALL_SECTIONS)


def test_imports_are_renamed() -> None:
    for ex in load_examples():
        tree = ast.parse(ex.code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module is not None
                assert node.module.split(".")[0] != "suitkaise", (ex.id, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] != "suitkaise", (ex.id, alias.name)
    assert rename_imports("import suitkaise\nfrom suitkaise import timing\n") == (
        "import suitkaise_nb\nfrom suitkaise_nb import timing\n"
    )
    assert rename_imports("import suitkaise_nb\nx = 'suitkaise'\n") == (
        "import suitkaise_nb\nx = 'suitkaise'\n"
    )


def test_parse_headings_and_fences() -> None:
    md = "# T\n\n## Sec\n\n### One\n\n```python\nprint(1)\n```\n\n## Solo\n\n```python\nx\n```\n"
    got = parse_examples(md)
    assert [(e.section, e.title, e.code, e.line) for e in got] == [
        ("Sec", "One", "print(1)\n", 7),
        ("Solo", "Solo", "x\n", 13),
    ]
    assert got[1].id == "solo"


def test_notebook_cells_split() -> None:
    code = (
        "import asyncio\n"
        "from x import y\n"
        "\n"
        "# the class\n"
        "@deco\n"
        "class A:\n"
        "    pass\n"
        "\n"
        "a = A()\n"
        "# comment kept\n"
        "b = 1\n"
        "\n"
        "async def main():\n"
        "    return 1\n"
        "\n"
        "result = asyncio.run(main())\n"
        "asyncio.run(main())\n"
        'if __name__ == "__main__":\n'
        "    def f():\n"
        "        return 2\n"
        "    print(f())\n"
    )
    assert notebook_cells(code) == [
        "import asyncio\nfrom x import y",
        "# the class\n@deco\nclass A:\n    pass",
        "a = A()\n# comment kept\nb = 1",
        "async def main():\n    return 1",
        "result = await main()\nawait main()",
        "def f():\n    return 2",
        "print(f())",
    ]


def test_every_example_splits_into_compilable_cells() -> None:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    for ex in load_examples():
        cells = notebook_cells(ex.code)
        assert cells, ex.id
        for cell in cells:
            compile(cell, f"<{ex.id}>", "exec", flags=flags)
        joined = "\n".join(cells)
        assert "asyncio.run(" not in joined, ex.id
        assert "__main__" not in joined, ex.id


def test_checks_claim_lines() -> None:
    expect = Expect(
        stdout=(
            InOrder(L("start"), R(r"n=(\d+)", lambda m: int(m[1]) > 0)),
            AnyOrder(L("[child] b"), L("[child] a")),
            Each(R(r"tick \d+"), least=1, most=2),
            Holds(lambda lines: None if lines[-1] == "end" else "end is not last", "last"),
            InOrder(L("end")),
        )
    )
    good = "start\n[child] a\ntick 1\n\nn=3  \n[child] b\nend\n"
    assert check_output(expect, good, "") == []
    problems = check_output(expect, "n=0\nstart\ntick 1\ntick 2\ntick 3\nend\nextra\n", "oops\n")
    assert any("'start'" in p or "n=" in p for p in problems), problems
    assert any("[child] b" in p for p in problems), problems
    assert any("found 3" in p for p in problems), problems
    assert any("end is not last" in p for p in problems), problems
    assert any("unexpected stdout lines" in p and "extra" in p for p in problems), problems
    assert any("unexpected stderr" in p for p in problems), problems


def test_block_and_warnings() -> None:
    expect = Expect(
        stdout=(Block(R("Caught: .*"), L("after"), contains=("boom",)),),
        stderr_allowed=(r"UserWarning: share",),
    )
    warn = "/x/y.py:3: UserWarning: share is stopped\n  share.x = 0\n"
    assert check_output(expect, "Caught: E\n  Traceback\n  boom\nafter\n", warn) == []
    assert check_output(expect, "Caught: E\nafter\n", "") == [
        "block /Caught: .*/..'after' does not contain /boom/"
    ]
    other = "/x/y.py:3: DeprecationWarning: old\n  f()\n"
    assert residual_stderr(warn + other, expect.stderr_allowed) == other.strip()

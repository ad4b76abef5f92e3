"""The map is true: shared things have one home (issue 17)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import suitkaise_nb

ERRORS = Path(suitkaise_nb.__file__).parent / "_errors.py"


def _modules():
    for info in pkgutil.walk_packages(suitkaise_nb.__path__, "suitkaise_nb."):
        yield importlib.import_module(info.name)


def test_every_exception_class_is_defined_in_errors():
    """Each exception class any module of the package holds is the one of ``_errors`` (the
    facades set ``__module__`` to their own name, so identity is what is checked)."""
    from suitkaise_nb import _errors

    root = str(Path(suitkaise_nb.__file__).parent)
    seen = 0
    elsewhere = []
    for module in _modules():
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and issubclass(obj, BaseException)):
                continue
            try:
                source = inspect.getsourcefile(obj) or ""
            except TypeError:
                source = ""
            if not source.startswith(root):
                continue  # the standard library's or a dependency's
            seen += 1
            if getattr(_errors, obj.__name__, None) is not obj:
                elsewhere.append(f"{module.__name__}.{name}")
    assert seen > 20
    assert not elsewhere, elsewhere


def test_the_errors_module_draws_its_tree():
    from suitkaise_nb import _errors

    doc = _errors.__doc__ or ""
    for name, obj in vars(_errors).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, BaseException)
            and obj.__module__
            in (
                "suitkaise_nb._errors",
                "suitkaise_nb.processing",
            )
        ):
            assert name in doc, f"{name} is missing from the tree in _errors' docstring"


def test_one_table_of_sections():
    from suitkaise_nb import _sections
    from suitkaise_nb._engine import _config, _model
    from suitkaise_nb.notebook import _cellproc

    assert _config.SECTIONS is _sections.SECTIONS
    assert _model.TIMER_NAMES == (*_sections.SECTIONS, "full_run")
    assert _cellproc.SECTIONS[1:] == _sections.SECTIONS


def test_skprocess_carries_the_mark_its_layers_below_recognise():
    from suitkaise_nb._engine._section import BASE_MARK, is_base, is_skprocess_class
    from suitkaise_nb.processing import Skprocess

    class Mine(Skprocess):
        def __run__(self):
            pass

    assert Skprocess.__dict__[BASE_MARK] is True
    assert is_base(Skprocess) and not is_base(Mine)
    assert is_skprocess_class(Mine) and not is_skprocess_class(object)


def test_one_view_kind_per_type_shown_as_a_value():
    """The notebook layer's table of view kinds: a new view is one entry."""
    from suitkaise_nb.notebook._kernel import view_kinds
    from suitkaise_nb.processing import Pool, Share, Skprocess
    from suitkaise_nb.timing import Sktimer

    kinds = view_kinds()
    assert [k.type for k in kinds] == [Skprocess, Pool, Sktimer, Share]
    assert all(callable(k.show) and callable(k.html) for k in kinds)

"""The one helper the public facades share."""

from __future__ import annotations

from typing import Any


def publish(namespace: dict[str, Any]) -> None:
    """Give every object a facade exports (its ``__all__``) that facade's name as
    ``__module__``, so that reprs, tracebacks and pickles use the public path
    (``suitkaise_nb.processing.RunError``). Objects that refuse (builtins, some descriptors)
    keep theirs."""
    module = namespace["__name__"]
    for name in namespace["__all__"]:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith("suitkaise_nb._"):
            try:
                obj.__module__ = module
            except (AttributeError, TypeError):
                pass

"""Exceptions raised by suitkaise_nb.

The tree::

    ProcessError(Exception)                  base of every process failure
     ├── PreRunError                         raised in __prerun__
     ├── RunError                            raised in __run__
     ├── PostRunError                        raised in __postrun__
     ├── OnFinishError                       raised in __onfinish__
     ├── ResultError                         raised in __result__ (or the result could not ship)
     ├── ErrorHandlerError                   raised in __error__
     ├── ProcessCrashedError                 the child died without reporting (signal, os._exit)
     │    └── WorkerDiedError(RuntimeError)  a pool worker died running an item (``_pool``)
     ├── PoolClosedError                     the pool was closed, terminated or cancelled
     ├── ShareError                          the Share cannot serve (stopped, or its server died)
     ├── ProcessTimeoutError(TimeoutError)   a lifecycle section overran its timeout
     ├── ResultTimeoutError(TimeoutError)    wait()/result()/listen() .timeout(s) expired
     ├── PipeEndpointError                   a Pipe end used or shipped the wrong way
     └── ShippingError(TypeError)            an object could not be sent to another process
          └── ShareValueError(ValueError)    a value a Share cannot keep (named share.attr)

    RemoteError(RuntimeError)                mixed into rebuilt worker exceptions, so that
                                             ``except ValueError`` and ``except RuntimeError``
                                             both catch a ValueError raised in a Pool worker
"""

from __future__ import annotations

from typing import Any

SECTION_NAMES = {
    "prerun": "__prerun__",
    "run": "__run__",
    "postrun": "__postrun__",
    "onfinish": "__onfinish__",
    "result": "__result__",
    "error": "__error__",
}


class RemoteTraceback(Exception):
    """Holds the traceback text of an exception raised in another process."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text.rstrip()


class ProcessError(Exception):
    """Base class of every failure of an Skprocess or a Pool task.

    Attributes
    ----------
    current_run: the run counter when it failed (None when unknown)
    original_error: the exception raised by user code, rebuilt with its original type
    remote_traceback: the child's traceback text ("" when there is none)
    """

    section: str | None = None

    def __init__(
        self,
        message: str = "",
        *,
        current_run: int | None = None,
        original_error: BaseException | None = None,
        remote_traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.current_run = current_run
        self.original_error = original_error
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.message, self.__dict__.copy()))

    def _render_traceback_(self) -> list[str]:
        """IPython hook: show the child's frames rather than the parent's wait()."""
        lines: list[str] = []
        if self.remote_traceback:
            lines.append("Traceback in the child process:")
            lines.extend(self.remote_traceback.rstrip().splitlines())
        lines.append(f"{type(self).__qualname__}: {self}")
        return lines


def _rebuild_error(cls: type[ProcessError], message: str, state: dict[str, Any]) -> ProcessError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class PreRunError(ProcessError):
    """An exception escaped ``__prerun__``."""

    section = "prerun"


class RunError(ProcessError):
    """An exception escaped ``__run__``."""

    section = "run"


class PostRunError(ProcessError):
    """An exception escaped ``__postrun__``."""

    section = "postrun"


class OnFinishError(ProcessError):
    """An exception escaped ``__onfinish__``."""

    section = "onfinish"


class ResultError(ProcessError):
    """An exception escaped ``__result__``, or its value could not be sent back."""

    section = "result"


class ErrorHandlerError(ProcessError):
    """An exception escaped ``__error__``."""

    section = "error"


class ProcessCrashedError(ProcessError):
    """The child process ended without reporting a result (a signal, ``os._exit``, OOM)."""

    def __init__(
        self,
        message: str = "",
        *,
        pid: int | None = None,
        exitcode: int | None = None,
        current_run: int | None = None,
    ) -> None:
        super().__init__(message, current_run=current_run)
        self.pid = pid
        self.exitcode = exitcode


class ProcessTimeoutError(ProcessError, TimeoutError):
    """A lifecycle section ran longer than its ``process_config.timeouts`` entry."""

    def __init__(
        self,
        message: str = "",
        *,
        section: str | None = None,
        timeout: float | None = None,
        current_run: int | None = None,
        remote_traceback: str = "",
    ) -> None:
        ProcessError.__init__(
            self, message, current_run=current_run, remote_traceback=remote_traceback
        )
        self.section = section
        self.timeout = timeout


class ResultTimeoutError(ProcessError, TimeoutError):
    """``.timeout(s)`` on wait/result/run/listen expired before the call could finish."""


class PipeEndpointError(ProcessError):
    """A Pipe end was shipped or used in a way it cannot be (e.g. sending the anchor)."""


class ShippingError(ProcessError, TypeError):
    """An object could not be serialized to travel to another process.

    ``path`` names the attribute (``MyProcess.db``) and ``type_name`` its type.
    """

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class ShareValueError(ShippingError, ValueError):
    """A value a Share cannot keep (it cannot be pickled to the Share's server), named by its
    place in the Share (``share.conn``); also a ``ValueError``, as in suitkaise."""


class RemoteError(RuntimeError):
    """Mixed into exceptions rebuilt from another process.

    A ``ValueError`` raised in a worker is re-raised in the caller as an instance of a class
    deriving from both ``ValueError`` and ``RemoteError``, so either ``except`` clause catches it.
    """

    remote_traceback: str = ""
    item_index: int | None = None
    item_repr: str | None = None

    def _render_traceback_(self) -> list[str]:
        lines = []
        if self.remote_traceback:
            lines.append("Traceback in the worker process:")
            lines.extend(self.remote_traceback.rstrip().splitlines())
        lines.append(f"{type(self).__qualname__}: {self}")
        return lines


SECTION_ERRORS: dict[str, type[ProcessError]] = {
    "prerun": PreRunError,
    "run": RunError,
    "postrun": PostRunError,
    "onfinish": OnFinishError,
    "result": ResultError,
    "error": ErrorHandlerError,
}

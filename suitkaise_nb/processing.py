"""Processes with a lifecycle, worker pools, shared state and pipes.

Public facade: everything here is defined in private modules and re-exported.
"""

from ._engine._config import ProcessConfig as ProcessConfig
from ._engine._errors import ErrorHandlerError as ErrorHandlerError
from ._engine._errors import OnFinishError as OnFinishError
from ._engine._errors import PipeEndpointError as PipeEndpointError
from ._engine._errors import PostRunError as PostRunError
from ._engine._errors import PreRunError as PreRunError
from ._engine._errors import ProcessCrashedError as ProcessCrashedError
from ._engine._errors import ProcessError as ProcessError
from ._engine._errors import ProcessTimeoutError as ProcessTimeoutError
from ._engine._errors import RemoteError as RemoteError
from ._engine._errors import ResultError as ResultError
from ._engine._errors import ResultTimeoutError as ResultTimeoutError
from ._engine._errors import RunError as RunError
from ._engine._errors import ShareValueError as ShareValueError
from ._engine._errors import ShippingError as ShippingError
from ._engine._model import ProcessState as ProcessState
from ._engine._model import ProcessTimers as ProcessTimers
from ._engine._pipe import Pipe as Pipe
from ._engine._process import Skprocess as Skprocess
from ._engine._reconnect import autoreconnect as autoreconnect
from ._pool._core import PoolClosedError as PoolClosedError
from ._pool._core import WorkerDiedError as WorkerDiedError
from ._pool._pool import Pool as Pool
from ._share._share import Share as Share
from ._share._share import ShareError as ShareError

__all__ = [
    "ErrorHandlerError",
    "OnFinishError",
    "Pipe",
    "PipeEndpointError",
    "Pool",
    "PoolClosedError",
    "PostRunError",
    "PreRunError",
    "ProcessConfig",
    "ProcessCrashedError",
    "ProcessError",
    "ProcessState",
    "ProcessTimeoutError",
    "ProcessTimers",
    "RemoteError",
    "ResultError",
    "ResultTimeoutError",
    "RunError",
    "Share",
    "ShareError",
    "ShareValueError",
    "ShippingError",
    "Skprocess",
    "WorkerDiedError",
    "autoreconnect",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("suitkaise_nb._"):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass
del _name, _obj

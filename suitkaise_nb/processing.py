"""Processes with a lifecycle, worker pools, shared state and pipes.

Public facade: everything here is defined in private modules and re-exported.
"""

from ._engine._config import ProcessConfig as ProcessConfig
from ._engine._model import ProcessState as ProcessState
from ._engine._model import ProcessTimers as ProcessTimers
from ._engine._pipe import Pipe as Pipe
from ._engine._process import Skprocess as Skprocess
from ._engine._reconnect import autoreconnect as autoreconnect
from ._errors import ErrorHandlerError as ErrorHandlerError
from ._errors import NotStartedError as NotStartedError
from ._errors import OnFinishError as OnFinishError
from ._errors import PipeEndpointError as PipeEndpointError
from ._errors import PoolClosedError as PoolClosedError
from ._errors import PostRunError as PostRunError
from ._errors import PreRunError as PreRunError
from ._errors import ProcessCrashedError as ProcessCrashedError
from ._errors import ProcessError as ProcessError
from ._errors import ProcessTimeoutError as ProcessTimeoutError
from ._errors import ReconnectError as ReconnectError
from ._errors import RemoteError as RemoteError
from ._errors import RemoteTraceback as RemoteTraceback
from ._errors import ResultError as ResultError
from ._errors import ResultTimeoutError as ResultTimeoutError
from ._errors import RunError as RunError
from ._errors import ShareError as ShareError
from ._errors import ShareValueError as ShareValueError
from ._errors import ShippingError as ShippingError
from ._errors import WorkerDiedError as WorkerDiedError
from ._pool._pool import Pool as Pool
from ._public import publish as _publish
from ._share._share import Share as Share

__all__ = [
    "ErrorHandlerError",
    "NotStartedError",
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
    "ReconnectError",
    "RemoteError",
    "RemoteTraceback",
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

_publish(globals())

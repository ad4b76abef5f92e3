"""The public observer API (see ``suitkaise_nb._engine._events`` for the hooks and events)."""

from ._engine._events import PoolEnded as PoolEnded
from ._engine._events import PoolProgress as PoolProgress
from ._engine._events import PoolStarted as PoolStarted
from ._engine._events import PoolWorkerChanged as PoolWorkerChanged
from ._engine._events import ProcessEnded as ProcessEnded
from ._engine._events import ProcessMessage as ProcessMessage
from ._engine._events import ProcessOutput as ProcessOutput
from ._engine._events import ProcessProgress as ProcessProgress
from ._engine._events import ProcessStarted as ProcessStarted
from ._engine._events import ProcessStateChanged as ProcessStateChanged
from ._engine._events import ShareChanged as ShareChanged
from ._engine._events import ShareStarted as ShareStarted
from ._engine._events import ShareStopped as ShareStopped
from ._engine._events import Subscription as Subscription
from ._engine._events import TimerCreated as TimerCreated
from ._engine._events import observers as observers
from ._engine._events import subscribe as subscribe
from ._engine._events import unsubscribe as unsubscribe

__doc__ = __doc__ + "\n\n" + (__import__("suitkaise_nb._engine._events").__doc__ or "")

__all__ = [
    "PoolEnded",
    "PoolProgress",
    "PoolStarted",
    "PoolWorkerChanged",
    "ProcessEnded",
    "ProcessMessage",
    "ProcessOutput",
    "ProcessProgress",
    "ProcessStarted",
    "ProcessStateChanged",
    "ShareChanged",
    "ShareStarted",
    "ShareStopped",
    "Subscription",
    "TimerCreated",
    "observers",
    "subscribe",
    "unsubscribe",
]

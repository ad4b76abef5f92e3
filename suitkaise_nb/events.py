"""The public observer API (see ``suitkaise_nb._events`` for the hooks and events)."""

from ._events import PoolEnded as PoolEnded
from ._events import PoolProgress as PoolProgress
from ._events import PoolStarted as PoolStarted
from ._events import PoolWorkerChanged as PoolWorkerChanged
from ._events import ProcessEnded as ProcessEnded
from ._events import ProcessMessage as ProcessMessage
from ._events import ProcessOutput as ProcessOutput
from ._events import ProcessProgress as ProcessProgress
from ._events import ProcessStarted as ProcessStarted
from ._events import ProcessStateChanged as ProcessStateChanged
from ._events import ShareChanged as ShareChanged
from ._events import ShareStarted as ShareStarted
from ._events import ShareStopped as ShareStopped
from ._events import Subscription as Subscription
from ._events import TimerCreated as TimerCreated
from ._events import observers as observers
from ._events import subscribe as subscribe
from ._events import unsubscribe as unsubscribe
from ._public import publish as _publish

__doc__ = __doc__ + "\n\n" + (__import__("suitkaise_nb._events").__doc__ or "")

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

_publish(globals())

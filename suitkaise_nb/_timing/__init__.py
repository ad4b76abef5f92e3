"""Private implementation of :mod:`suitkaise_nb.timing`.

::

    _timer.py   Sktimer (samples + O(1) running statistics) and the frozen TimerStats
    _api.py     TimeThis, timethis, time, sleep, elapsed and the global-timer registry

Import from :mod:`suitkaise_nb.timing`; the layout of this package may change.
"""

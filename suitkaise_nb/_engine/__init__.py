"""The process engine: spawning, wire protocol, event hub and the Skprocess lifecycle.

Layers (each imports only the ones above it)::

    _errors      exception tree shared by everything
    _wire        framed messages over AF_UNIX sockets (+ fd passing)
    _serial      code by value (dill/cloudpickle), data by pickle-5 with out-of-band buffers
    _zygote      the single-threaded fork server that keeps warm spare children
    _hub         the one parent thread that waits on every channel and exit report
    _launcher    parent side of the zygote: warm spares, exit reports, kill, atexit
    _events      public observer registry and the frozen event dataclasses
    _config      ProcessConfig / Timeouts with validation
    _child       what runs in the child: the lifecycle loop, tell/listen, output capture
    _process     Skprocess: the user's class, the parent handle and the child API
"""

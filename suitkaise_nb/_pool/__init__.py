"""Worker pools: one dispatcher (``_core``) over slots from a backend (local processes, Dask)."""

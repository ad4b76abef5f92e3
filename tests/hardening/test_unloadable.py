"""Objects that pickle fine but raise when they are rebuilt on the other side
(``procs.LoadFails``).

1. As a Pool item: the worker reports the chunk it could not unpickle and the caller gets the
   cause, naming the item that does not rebuild; the worker lives on.
2. As a message from the child: the parent's ``listen()`` raises ProcessError with the cause
   (it does not return the error as if it were the message), and later messages still arrive.
"""

from __future__ import annotations

import pytest

from suitkaise_nb.processing import Pool, ProcessError
from tests.pool import fns

from .procs import LoadFails, SendsUnloadable

pytestmark = pytest.mark.timeout(60)


def test_an_item_the_worker_cannot_rebuild_is_an_item_error_not_a_dead_worker():
    with Pool(2) as pool:
        workers = sorted(pool.model.workers)
        with pytest.raises(Exception) as info:
            pool.map(fns.identity, [1, 2, LoadFails(), 4])
        text = str(info.value)
        assert "pool item 2" in text, text
        assert "refuses to be rebuilt" in text, text  # the cause, not "exit code 70"
        assert pool.map(fns.square, [3]) == [9]
        assert sorted(pool.model.workers) == workers  # nobody had to die


def test_a_message_the_parent_cannot_rebuild_is_raised_by_listen():
    p = SendsUnloadable()
    p.start()
    try:
        with pytest.raises(ProcessError, match="refuses to be rebuilt"):
            got = p.listen(10)
            print("listen() returned", type(got).__name__, got)
        assert p.listen(10) == "after"
        assert p.result() == "done"
    finally:
        if p.is_alive:
            p.kill()

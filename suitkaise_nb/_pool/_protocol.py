"""Frame kinds spoken between the pool dispatcher and its workers.

parent → worker:  FUNC (job id, target, star)      ship the callable once per job and worker
                  CHUNK (job id, chunk id, start, items, timed)
                  FORGET (job id)                  the job is over: drop its callable
                  CANCEL (job id)                  abandon the chunk of that job in progress
worker → parent:  RESULTS (job id, chunk id, values, durations, error or None, busy seconds)
                  OUTPUT (stream, text)            captured stdout/stderr (kernel mode)
                  FREED [inode, ...]               memfds of large items the worker no longer
                                                   maps: the parent may write them again
"""

K_FUNC = 16
K_CHUNK = 17
K_FORGET = 18
K_CANCEL = 19
K_RESULTS = 20
K_OUTPUT = 21
K_FREED = 22

#: the chunk id and item repr of the answer to a chunk the worker could not unpickle (the
#: parent knows which chunk it was: the worker's oldest unanswered one)
UNLOADED_CHUNK = -2
UNLOADABLE = "<could not be rebuilt in the worker>"

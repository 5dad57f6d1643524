"""A `fastmtcnn.batch` task function that kills its worker process on one image (importable by spawned workers)."""
import os
import signal

from fastmtcnn.batch import _process

POISON = "group.png"


def crash_on_poison(task):
    """Like the real task function, but the worker dies of a segmentation fault on POISON."""
    if task[0] == POISON:
        os.kill(os.getpid(), signal.SIGSEGV)
    return _process(task)

"""The worker side of ``signing.workers``: what runs inside each spawned process
(limits armed, initializer, then one task at a time from the pipe), and the limit
types shared with the parent."""

from __future__ import annotations

import math
import os
import pickle
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SigningError

__all__ = ["WorkerLimitError", "WorkerLimits", "describe", "worker_main"]


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int | None = 2 * 1024**3  # RLIMIT_AS of each worker process
    cpu_seconds: float | None = 120.0  # per task: RLIMIT_CPU soft limit, SIGXCPU kills
    wall_seconds: float | None = 180.0  # per task (and per start): the parent kills
    # added to the workers' nice value: when the CPUs are saturated the gateway's event
    # loop (HTTP, health checks, feeding the workers) runs first, the heavy work waits
    niceness: int = 10


class WorkerLimitError(SigningError):
    """The worker of the caller's task died (memory, CPU, wall time, crash) or ran out of
    memory or stack; it has been replaced."""

    code = "resource_limit"
    status = 422
    title = "The document exceeds the processing limits"


def describe(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, SigningError) else f"{type(exc).__name__}: {exc}"


def _call(fn: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except (MemoryError, RecursionError) as exc:
        fatal = type(exc).__name__  # leaving the block frees the frames the traceback holds
    except BaseException as exc:  # forwarded to the caller, not swallowed
        try:  # as it is if it survives pickling, else described
            pickle.loads(pickle.dumps(exc))
        except Exception:
            return ("err", RuntimeError(describe(exc)))
        return ("err", exc)
    return ("limit", fatal)


def worker_main(conn, initializer: Callable[..., None], initargs: tuple, limits: WorkerLimits):
    """The target of every worker. Returning normally lets multiprocessing run the
    finalizers the initializer registered (``multiprocessing.util.Finalize``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if limits.niceness:
        os.nice(limits.niceness)
    if limits.memory_bytes is not None:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]  # RLIM_INFINITY is -1
        cap = limits.memory_bytes if hard < 0 else min(hard, limits.memory_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        initializer(*initargs)
    except BaseException as exc:  # reported to the parent, whose start() fails with it
        conn.send(("failed", describe(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the parent is gone
            return
        except Exception as exc:  # e.g. the task's module does not import here
            reply: tuple[str, Any] = ("err", RuntimeError(f"unreadable task: {describe(exc)}"))
        else:
            if message is None:  # graceful stop
                return
            if limits.cpu_seconds is not None:  # soft = CPU used so far + the allowance
                used = resource.getrusage(resource.RUSAGE_SELF)
                soft = math.ceil(used.ru_utime + used.ru_stime + limits.cpu_seconds)
                hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
                resource.setrlimit(
                    resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard)
                )
            reply = _call(*message)
            del message
        try:
            conn.send(reply)
        except OSError:
            return
        except MemoryError:
            reply = ("limit", "MemoryError")
            conn.send(reply)
        except Exception as exc:  # the result does not pickle: say so
            conn.send(("err", RuntimeError(f"the result cannot be sent: {describe(exc)}")))
        if reply[0] == "limit":
            return  # this process's state is suspect: the parent starts another

"""A process pool that survives its inputs: per-worker memory, CPU and wall-time limits,
and a worker that dies or hangs is killed and replaced alone.

``ProcessPoolExecutor`` cannot do this: one dead worker breaks the pool for every request
in flight, and a hung worker cannot be killed by itself. Untrusted PDFs do both (Flate
bombs, reference cycles, deep nesting: NOTES 14), so each worker here is a spawned
process with its own pipe. The parent waits on the pipe and the process sentinel with
``loop.add_reader``, holding no thread while a task runs; only moving a message (maybe a
100 MB PDF) through the pipe, starting and joining processes run in a private thread pool.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import logging
import multiprocessing
import pickle
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import KeyUnavailableError
from .frames import INLINE, Frame, unpickle
from .worker_main import WorkerLimitError, WorkerLimits, describe, worker_main

__all__ = ["WorkerLimitError", "WorkerLimits", "WorkerPool"]

log = logging.getLogger("docgate.workers")


# --- the parent -------------------------------------------------------------------------


class _Gone(Exception):
    """The worker process exited or was killed: ``limit`` says why."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit, self.detail = limit, detail


@dataclass(eq=False)
class _Worker:
    process: Any  # multiprocessing.Process of the spawn context
    conn: Any  # the parent's end of a duplex multiprocessing.Pipe
    number: int
    reaped: asyncio.Future | None = None  # the one join() of the process, in a thread
    stopped_for_cancel: bool = False  # killed because its caller went away


_SKIPPED = object()  # a broadcast target replaced before its turn
_LIMITS = {  # what a worker reports before it exits -> (limit, detail for the caller)
    "MemoryError": ("memory", "the document needs more memory than a worker may use"),
    "RecursionError": ("recursion", "the document is nested too deeply to process"),
}


class WorkerPool:
    """``size`` spawned workers, each set up once by ``initializer(*initargs)``."""

    def __init__(
        self,
        initializer: Callable[..., None],
        initargs: tuple,
        size: int,
        limits: WorkerLimits,
        name: str = "docgate-worker",
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._initializer, self._initargs = initializer, initargs
        self._size, self._limits, self._name = size, limits, name
        self._ctx = multiprocessing.get_context("spawn")
        self._numbers = itertools.count(1)
        self._workers: list[_Worker] = []  # started and ready, busy or idle
        self._idle: collections.deque[_Worker] = collections.deque()
        # callers waiting for a worker, FIFO: (None, fut) any worker, (w, fut) that one
        self._waiters: collections.deque[tuple[_Worker | None, asyncio.Future]]
        self._waiters = collections.deque()
        self._tasks: set[asyncio.Task] = set()  # tasks in flight
        self._respawns: set[asyncio.Task] = set()
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        self._running = False
        self._problem = "the worker pool is not running"
        self._respawn_problem: str | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def alive(self) -> int:
        return len(self._workers)

    async def start(self) -> None:
        if self._running:
            return
        self._io = concurrent.futures.ThreadPoolExecutor(3 * self._size + 2, f"{self._name}-io")
        self._running = True
        spawned = [self._spawn() for _ in range(self._size)]
        results = await asyncio.gather(*spawned, return_exceptions=True)
        self._workers = [r for r in results if isinstance(r, _Worker)]
        self._idle.extend(self._workers)
        failed = [r for r in results if not isinstance(r, _Worker)]
        if failed:
            await self.close()
            self._problem = describe(failed[0])
            raise KeyUnavailableError(self._problem) from None

    async def run(
        self,
        fn: Callable,
        *args: Any,
        wall_seconds: float | None = None,
        stop_on_cancel: bool = False,
    ) -> Any:
        """Run ``fn(*args)`` (a module-level function) on the next idle worker, FIFO.

        A caller cancelled while waiting for a worker leaves the queue. Once its task
        runs, it finishes on its worker, unless ``stop_on_cancel``: then the worker is
        killed and replaced (worth it for a large document, not for a small one)."""
        worker = await self._acquire(None)
        task = self._track(self._execute(worker, fn, args, wall_seconds), self._tasks)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if stop_on_cancel and not task.done():  # still ours: the worker has not let go
                worker.stopped_for_cancel = True
                worker.process.kill()
            raise

    async def broadcast(self, fn: Callable, *args: Any) -> list:
        """Run ``fn(*args)`` once on every worker alive now (one replaced meanwhile is
        skipped). On each worker a broadcast goes before queued ``run`` calls."""

        async def on(worker: _Worker) -> Any:
            if await self._acquire(worker) is None:
                return _SKIPPED
            return await self._dispatch(worker, fn, args, None)

        if not self._running:
            raise KeyUnavailableError(self._problem)
        results = await asyncio.gather(*(on(w) for w in list(self._workers)))
        return [r for r in results if r is not _SKIPPED]

    async def close(self, timeout: float = 10.0) -> None:
        """Ask every worker to exit (each finishes its task, then runs its finalizers),
        wait up to ``timeout`` seconds, then kill the rest."""
        self._running = False
        self._problem = "the worker pool is closed"
        for task in self._respawns:
            task.cancel()
        self._fail_waiters(lambda w: True, self._problem)
        workers, self._workers = self._workers, []
        for worker in self._idle:  # a busy worker gets its stop from _release
            self._send_stop(worker)
        self._idle.clear()
        await asyncio.gather(*(self._join(w, timeout) for w in workers))
        # tasks in flight end with their workers; cancelled respawns kill what they started
        await asyncio.gather(*self._tasks, *self._respawns, return_exceptions=True)
        for worker in workers:
            worker.conn.close()
        if self._io is not None:
            self._io.shutdown(wait=False)
            self._io = None

    # --- scheduling ---

    async def _acquire(self, wanted: _Worker | None) -> _Worker | None:
        if not self._running:
            raise KeyUnavailableError(self._problem)
        if wanted is None:
            if not self._workers and self._respawn_problem:
                raise KeyUnavailableError(f"no worker is running: {self._respawn_problem}")
            if self._idle:
                return self._idle.popleft()
        elif wanted not in self._workers:
            return None
        elif wanted in self._idle:
            self._idle.remove(wanted)
            return wanted
        entry = (wanted, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            return await entry[1]
        except asyncio.CancelledError:
            fut = entry[1]
            if fut.done() and not fut.cancelled() and fut.exception() is None and fut.result():
                self._release(fut.result())  # handed over as we were cancelled: pass it on
            elif entry in self._waiters:
                self._waiters.remove(entry)
            raise

    def _release(self, worker: _Worker) -> None:
        if worker not in self._workers:
            if not self._running:
                self._send_stop(worker)
            return
        for pick in (lambda w: w is worker, lambda w: w is None):  # broadcasts first
            for entry in self._waiters:
                if pick(entry[0]) and not entry[1].done():
                    self._waiters.remove(entry)
                    entry[1].set_result(worker)
                    return
        self._idle.append(worker)

    def _fail_waiters(self, pick: Callable[[_Worker | None], bool], problem: str | None) -> None:
        """Fail the waiters ``pick`` selects with ``problem``; None: skip (broadcasts)."""
        for worker, fut in [e for e in self._waiters if pick(e[0])]:
            self._waiters.remove((worker, fut))
            if not fut.done() and problem is None:
                fut.set_result(None)
            elif not fut.done():
                fut.set_exception(KeyUnavailableError(problem))

    def _track(self, coro, into: set[asyncio.Task]) -> asyncio.Task:
        task = asyncio.create_task(coro)
        into.add(task)
        task.add_done_callback(into.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # mark retrieved
        return task

    async def _dispatch(self, worker: _Worker, fn: Callable, args: tuple, wall: float | None):
        # A caller that gives up (cancellation) leaves the task to finish on its worker.
        return await asyncio.shield(self._track(self._execute(worker, fn, args, wall), self._tasks))

    # --- one task on one worker ---

    async def _execute(self, worker: _Worker, fn: Callable, args: tuple, wall: float | None):
        wall = self._limits.wall_seconds if wall is None else wall
        try:
            try:
                await self._send(worker, (fn, args))
            except OSError:
                raise _Gone("crash", "the worker stopped before it got the task") from None
            except Exception:  # fn or args do not pickle: nothing was written
                self._release(worker)
                raise
            kind, value = await self._receive(worker, wall)
            if kind == "limit":
                raise _Gone(*_LIMITS[value])
        except _Gone as gone:
            await self._replace(worker, gone)
            if not self._running:
                raise KeyUnavailableError("the worker pool was closed during the task") from None
            raise WorkerLimitError(gone.detail, limit=gone.limit) from None
        self._release(worker)
        if kind == "ok":
            return value
        raise value

    async def _send(self, worker: _Worker, message: tuple) -> None:
        fn, args = message
        if sum(len(a) for a in args if isinstance(a, bytes | bytearray)) > INLINE:
            await asyncio.get_running_loop().run_in_executor(self._io, worker.conn.send, message)
            return
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        if len(payload) <= INLINE:
            worker.conn.send_bytes(payload)
        else:
            await asyncio.get_running_loop().run_in_executor(
                self._io, worker.conn.send_bytes, payload
            )

    async def _receive(self, worker: _Worker, wall: float | None) -> tuple[str, Any]:
        loop = asyncio.get_running_loop()
        complete = loop.create_future()
        frame = Frame()
        conn_fd, sentinel = worker.conn.fileno(), worker.process.sentinel

        def readable(drain: bool) -> None:
            # drain: the process has exited; what it wrote is buffered, reads cannot block
            try:
                while not frame.feed(conn_fd):
                    if not drain:
                        return
            except (EOFError, OSError) as exc:
                if not complete.done():
                    complete.set_exception(EOFError(str(exc)))
                return
            if not complete.done():
                complete.set_result(None)

        try:
            async with asyncio.timeout(wall):
                loop.add_reader(conn_fd, readable, False)
                loop.add_reader(sentinel, readable, True)
                try:
                    await complete
                except EOFError:
                    raise _Gone(*await self._exit_reason(worker)) from None
                finally:
                    loop.remove_reader(conn_fd)
                    loop.remove_reader(sentinel)
        except TimeoutError:
            worker.process.kill()
            raise _Gone("wall", f"processing took longer than {wall:g} s") from None
        body = frame.body
        if len(body) <= 1 << 20:
            return unpickle(body)
        return await loop.run_in_executor(self._io, unpickle, body)

    async def _exit_reason(self, worker: _Worker) -> tuple[str, str]:
        await self._join(worker, 5.0)
        if worker.stopped_for_cancel:
            return "cancelled", "the caller went away; its task was stopped"
        code = worker.process.exitcode
        if code == -signal.SIGXCPU:
            return "cpu", f"processing used more than {self._limits.cpu_seconds:g} s of CPU time"
        if code == -signal.SIGKILL:
            return "memory", "the worker was killed (out of memory?)"
        if code is not None and code < 0:
            return "crash", f"the worker crashed ({signal.Signals(-code).name})"
        return "crash", f"the worker stopped unexpectedly (exit code {code})"

    # --- starting, replacing, stopping ---

    async def _spawn(self) -> _Worker:
        """Start one worker and wait until its initializer has finished."""
        parent, child = self._ctx.Pipe(duplex=True)
        number = next(self._numbers)
        args = (child, self._initializer, self._initargs, self._limits)
        name = f"{self._name}-{number}"
        worker = _Worker(
            self._ctx.Process(target=worker_main, args=args, name=name, daemon=True),
            parent,
            number,
        )
        starting = asyncio.get_running_loop().run_in_executor(self._io, worker.process.start)
        starting.add_done_callback(lambda _: child.close())  # the child has its own copy
        try:
            await asyncio.shield(starting)
            kind, value = await self._receive(worker, self._limits.wall_seconds)
        except OSError as exc:  # no processes or memory left for one
            parent.close()
            raise KeyUnavailableError(f"a worker could not start: {exc}") from None
        except _Gone as gone:
            await self._join(worker, 5.0)
            worker.conn.close()
            if gone.limit == "wall":
                gone.detail = f"it did not start within {self._limits.wall_seconds:g} s"
            raise KeyUnavailableError(f"a worker could not start: {gone.detail}") from None
        except BaseException:  # cancelled by close(): kill the process once it exists
            starting.add_done_callback(lambda _: worker.process.pid and worker.process.kill())
            parent.close()
            raise
        if kind != "ready":
            await self._join(worker, 5.0)
            worker.conn.close()
            raise KeyUnavailableError(str(value))
        return worker

    async def _join(self, worker: _Worker, timeout: float) -> None:
        """Wait for the process to exit, killing it after ``timeout`` seconds. One thread
        joins it, however many callers wait (two threads would race on waitpid)."""
        if worker.reaped is None:
            loop = asyncio.get_running_loop()
            worker.reaped = loop.run_in_executor(self._io, worker.process.join)
        done, _ = await asyncio.wait({worker.reaped}, timeout=timeout)
        if not done:
            log.warning("worker %s did not stop within %g s: killed", worker.number, timeout)
            worker.process.kill()
            await worker.reaped

    async def _replace(self, worker: _Worker, gone: _Gone) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        self._fail_waiters(lambda w: w is worker, None)  # its broadcasts skip it
        # close() or a cancelled caller killed it: expected, not a warning
        expected = not self._running or worker.stopped_for_cancel
        level = logging.INFO if expected else logging.WARNING
        log.log(level, "worker %s (pid %s) lost: %s", worker.number, worker.process.pid, gone)
        await self._join(worker, 5.0)
        worker.conn.close()
        if self._running:
            self._track(self._respawn(), self._respawns)

    async def _respawn(self) -> None:
        delay = 0.5
        while True:
            try:
                worker = await self._spawn()
                break
            except KeyUnavailableError as exc:
                self._respawn_problem = exc.detail
                log.error("could not replace a worker (%s); retrying in %g s", exc.detail, delay)
                if not self._workers:  # nobody can serve the callers waiting: tell them
                    self._fail_waiters(lambda w: w is None, exc.detail)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 60.0)
        self._respawn_problem = None
        self._workers.append(worker)
        self._release(worker)

    def _send_stop(self, worker: _Worker) -> None:
        # Only sent to a worker waiting for its next task: the pipe is empty, no blocking.
        try:
            worker.conn.send(None)
        except OSError:
            pass  # already gone

"""One background event loop for every client of this process.

Chaos Toolkit calls activities synchronously, one after another, while
background traffic must keep running between them. So all of the client
side's asyncio work (RemoteAgents, middleware, traffic) lives on ONE event
loop in one daemon thread; activities hand it coroutines with ``run`` (wait
for the result) or ``submit`` (fire and keep the future). agenkit's
decorators keep asyncio locks, which bind to the loop that first uses
them, so a client must never be touched from any other loop.

A run with a kernel network (``chaosagenkit.kernel``) puts the loop thread
in its callers' network namespace (``set_network_namespace``). The thread
enters it before its loop runs, every time the loop (re)starts, so no
client of such a run can ever call from the host's namespace, where the
run's addresses are not routed and would leave the machine by its default
route; a loop that cannot enter it never runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from chaosagenkit.exceptions import TargetError

__all__ = ["RUNTIME", "Runtime"]

T = TypeVar("T")


class Runtime:
    """A daemon thread running an asyncio loop, started on first use."""

    def __init__(self, name: str = "chaosagenkit-client") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._network_namespace: str | None = None  # a bind mount such as /run/netns/NAME

    def set_network_namespace(self, path: str | None) -> None:
        """Run the loop in the network namespace at ``path`` (None: this process's own) from now on.

        Restarts the loop thread, so nothing it started earlier stays in the old namespace.
        """
        self.stop()
        with self._lock:
            self._network_namespace = path

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started if needed."""
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._start()
            assert self._loop is not None
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; return a thread-safe future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run ``coro`` on the loop and wait up to ``timeout_s`` for its result.

        On timeout the coroutine is cancelled and ``TargetError`` raised.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("Runtime.run called from the runtime's own loop (would deadlock)")
        future = self.submit(coro)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TargetError(f"client work did not finish within {timeout_s:g} s") from None

    def call(self, func: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run a plain function on the loop thread (to read state the loop mutates)."""

        async def wrapper() -> T:
            return func()

        return self.run(wrapper(), timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel every task left on the loop, stop it and join the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=timeout_s)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []
        namespace = self._network_namespace

        def main() -> None:
            if namespace is not None:
                try:
                    fd = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        os.setns(fd, os.CLONE_NEWNET)  # this thread only
                    finally:
                        os.close(fd)
                except OSError as e:
                    failed.append(e)
                    loop.close()
                    ready.set()
                    return
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=main, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        if failed:
            raise TargetError(f"the client loop cannot enter network namespace {namespace}: {failed[0]}")
        self._loop, self._thread = loop, thread


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


#: The one runtime of this process.
RUNTIME = Runtime()

"""The Dask side of the screen and the study: the scheduler's address checked, the client
connected within a bounded time, and tasks run so that losing workers is waited out or
stopped with a clear error instead of a hang or a traceback.

:func:`check_scheduler` refuses an address that is not ``tcp://HOST:PORT`` or
``tls://HOST:PORT`` before any work. :func:`client` first asks the scheduler who it is, over
Dask's own protocol, with the connection and the answer bounded by ``connect_timeout``
seconds (a listener that never answers, an HTTP server, a server sending other bytes: one
error each), then waits up to ``worker_timeout`` seconds for a worker. :class:`Pool` runs
calls on the client; when the cluster has no worker left it waits up to ``worker_timeout``
seconds for one to join, sends again what was lost with the workers, and goes on, or stops
with a :class:`~kalcoint.errors.KalcointError`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import CancelledError
import contextlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import KalcointError

CONNECT_TIMEOUT = 10.0
"""Seconds to connect to a scheduler and hear its answer."""
WORKER_TIMEOUT = 60.0
"""Seconds to wait for a worker: at the start, and after the last worker has left."""
ADDRESS_FORMS = "tcp://HOST:PORT or tls://HOST:PORT"
"""The scheduler addresses accepted, as said in messages."""

_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})")
_POLL_S = 0.5


def check_scheduler(scheduler: str | None, security: Any) -> None:
    """Refuse a scheduler address that is not ``tcp://HOST:PORT`` or ``tls://HOST:PORT``, a
    ``tls://`` scheduler without TLS settings, and TLS settings without one.

    Parameters
    ----------
    scheduler : str or None
        Address of a Dask scheduler.
    security : object or None
        TLS settings (:func:`kalcoint.screen.tls_security`).

    Raises
    ------
    KalcointError

    Examples
    --------
    >>> check_scheduler("tcp://127.0.0.1:8786", None)
    >>> check_scheduler("127.0.0.1", None)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: scheduler '127.0.0.1' is not an address of the form tcp://HOST:PORT or tls://HOST:PORT
    >>> check_scheduler("tls://10.0.0.5:8786", None)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: scheduler tls://10.0.0.5:8786 uses TLS: give the CA file, certificate and key
    """
    if scheduler is not None:
        match = _ADDRESS.fullmatch(scheduler)
        if match is None or not 1 <= int(match.group(3)) <= 65535:
            raise KalcointError(
                f"scheduler {scheduler!r} is not an address of the form {ADDRESS_FORMS}", params="scheduler"
            )
    if scheduler is not None and scheduler.startswith("tls://") and security is None:
        raise KalcointError(
            f"scheduler {scheduler} uses TLS: give the CA file, certificate and key", params=("scheduler", "security")
        )
    if security is not None and (scheduler is None or not scheduler.startswith("tls://")):
        raise KalcointError(
            "TLS settings (security) apply to a tls://host:port scheduler only", params=("scheduler", "security")
        )


def timeouts(connect_timeout: float | None, worker_timeout: float | None) -> tuple[float, float]:
    """``(connect_timeout, worker_timeout)`` in seconds: :data:`CONNECT_TIMEOUT` and
    :data:`WORKER_TIMEOUT` for None; anything but a finite number > 0 is refused.

    Examples
    --------
    >>> timeouts(None, 5)
    (10.0, 5)
    >>> timeouts(0, None)
    Traceback (most recent call last):
    ...
    kalcoint.errors.KalcointError: connect_timeout 0 must be a number of seconds > 0
    """
    chosen = (
        CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
        WORKER_TIMEOUT if worker_timeout is None else worker_timeout,
    )
    for name, value in zip(("connect_timeout", "worker_timeout"), chosen):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise KalcointError(f"{name} {value} must be a number of seconds > 0", params=name)
    return chosen


def _refused(scheduler: str, why: str) -> KalcointError:
    return KalcointError(
        f"scheduler {scheduler}: {why}; start one with `dask scheduler` and workers with `dask worker {scheduler}`",
        params="scheduler",
    )


def _ask_identity(scheduler: str, security: Any, timeout: float) -> Any:
    """The scheduler's answer to Dask's ``identity`` call. Dask retries the connection for
    ``timeout`` seconds; the whole exchange is cut at ``timeout`` + 1 s (Dask's handshake alone
    waits for ever). Runs in a thread of its own, so that a caller inside an event loop works too."""
    from distributed.comm import connect

    args = security.get_connection_args("client") if security is not None else {}

    async def ask() -> Any:
        comm = await connect(scheduler, timeout=timeout, **args)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = asyncio.run(asyncio.wait_for(ask(), timeout + 1.0))
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="kalcoint-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 10.0)
    if thread.is_alive():
        raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


def probe(scheduler: str, security: Any = None, timeout: float | None = None) -> None:
    """Check that a Dask scheduler answers at ``scheduler`` within ``timeout`` seconds.

    Parameters
    ----------
    scheduler : str
        ``tcp://HOST:PORT`` or ``tls://HOST:PORT``.
    security : distributed.security.Security, optional
        TLS settings of a ``tls://`` scheduler.
    timeout : float, optional
        Seconds Dask retries the connection (default :data:`CONNECT_TIMEOUT`); the handshake
        and the answer must come within 1 s more.

    Raises
    ------
    KalcointError
        Nothing listens, the server does not answer in time, or it does not speak Dask's protocol.
    """
    timeout = timeouts(timeout, None)[0]
    try:
        answer = _ask_identity(scheduler, security, timeout)
    except TimeoutError:
        raise _refused(scheduler, f"no answer within {timeout + 1:g} s (is it a `dask scheduler`?)") from None
    except OSError as exc:
        raise _refused(scheduler, f"cannot connect ({' '.join(str(exc).split()) or type(exc).__name__})") from None
    except Exception as exc:  # a server that sends something else: junk lengths, other protocols
        raise _refused(scheduler, f"the server does not speak Dask's protocol ({type(exc).__name__})") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise _refused(scheduler, "the server answered, but not as a `dask scheduler`")


@contextlib.contextmanager
def client(
    workers: int,
    scheduler: str | None,
    security: Any = None,
    *,
    connect_timeout: float | None = None,
    worker_timeout: float | None = None,
) -> Iterator[Any]:
    """A Dask client of the scheduler at ``scheduler`` (checked with :func:`probe`, then given
    ``worker_timeout`` seconds to have a worker), or of a local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    connect_timeout, worker_timeout = timeouts(connect_timeout, worker_timeout)
    if scheduler is not None:
        probe(scheduler, security, connect_timeout)
        try:
            connected = Client(scheduler, timeout=f"{connect_timeout}s", security=security)
        except (OSError, TimeoutError) as exc:
            raise _refused(scheduler, f"cannot connect ({' '.join(str(exc).split())})") from None
        try:
            connected.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError:
            connected.close()
            raise KalcointError(
                f"scheduler {scheduler}: no workers joined within {worker_timeout:g} s; "
                f"start `dask worker {scheduler}`",
                params="scheduler",
            ) from None
        with connected:
            yield connected
        return
    with _sigint_ignored():  # Ctrl-C stops this process, which then closes the workers cleanly
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
    with cluster, Client(cluster) as local:
        yield local


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while child processes start: they inherit it, so a Ctrl-C reaches
    only this process instead of printing a traceback from every worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Shared:
    """An object sent to the workers once (:meth:`Pool.share`), again if they lose it."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.future: Any = None


_LOST = object()
"""A call's result that went with a worker: the call is sent again once a worker is back."""


class Pool:
    """Runs calls on a Dask client and yields their results as they finish.

    When the cluster has no worker, the pool waits up to ``worker_timeout`` seconds for one;
    calls whose inputs were lost with the workers are sent again. Past that wait it raises a
    :class:`~kalcoint.errors.KalcointError` saying how to continue.

    Parameters
    ----------
    client : distributed.Client
    scheduler : str or None
        The scheduler's address, for messages (None: a local cluster).
    worker_timeout : float, optional
        Seconds to wait for a worker once none is left (default :data:`WORKER_TIMEOUT`).
    out : path-like, optional
        Where the caller keeps the rows done (named in the message that stops the run).
    """

    def __init__(
        self, client: Any, scheduler: str | None, worker_timeout: float | None = None, out: Path | None = None
    ) -> None:
        self.client = client
        self.scheduler = scheduler
        self.worker_timeout = timeouts(None, worker_timeout)[1]
        self.out = out
        self.futures: dict[Any, tuple[Any, Callable, tuple]] = {}
        self.lost: list[tuple[Any, Callable, tuple]] = []
        self.shared: list[Shared] = []
        self.alone_since: float | None = None

    def share(self, value: Any) -> Shared:
        """A handle to pass to :meth:`submit` in place of ``value``: sent to every worker once."""
        handle = Shared(value)
        self.shared.append(handle)
        return handle

    def submit(self, key: Any, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)``; its result comes out of :meth:`results` with ``key``."""
        self.futures[self.client.submit(fn, *self._sent(args), pure=False)] = (key, fn, args)

    def warm(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` once on every worker and wait: each has then imported what the calls
        need and loaded the compiled kernels, so that the work timed afterwards is the work."""
        sent = self._sent(args)
        workers = list(self.client.scheduler_info()["workers"])
        self.client.gather([self.client.submit(fn, *sent, workers=[w], pure=False) for w in workers])

    def _sent(self, args: tuple) -> tuple:
        """``args`` with each shared value replaced by its copy on the workers (sent when missing)."""
        for handle in args:
            if isinstance(handle, Shared) and (handle.future is None or handle.future.status != "finished"):
                handle.future = self.client.scatter(handle.value, broadcast=True)
        return tuple(a.future if isinstance(a, Shared) else a for a in args)

    def results(self) -> Iterator[tuple[Any, Any]]:
        """``(key, result)`` of each call as it finishes (calls submitted meanwhile included)."""
        from distributed import wait

        try:
            while self.futures or self.lost:
                if self.futures:
                    # returns when one is done, raises when none is (TimeoutError) or one was cancelled
                    with contextlib.suppress(TimeoutError, CancelledError):
                        wait(list(self.futures), timeout=_POLL_S, return_when="FIRST_COMPLETED")
                else:
                    time.sleep(_POLL_S)
                done = [future for future in self.futures if future.done()]
                for future in done:
                    call = self.futures.pop(future)
                    try:
                        result = _LOST if future.status == "cancelled" else future.result()
                    except CancelledError:  # finished, but its result went with a worker that died since
                        result = _LOST
                    if result is _LOST:  # its inputs or its result were lost with the workers
                        self.lost.append(call)
                    else:
                        yield call[0], result
                if not done or self.lost:
                    self._watch()
        finally:
            self.client.cancel(list(self.futures))

    def _watch(self) -> None:
        """Note when the cluster has no worker; send the lost calls again once one is back."""
        try:
            workers = self.client.nthreads()
            if workers:
                self.alone_since = None
                lost, self.lost = self.lost, []
                for key, fn, args in lost:
                    self.submit(key, fn, *args)
                return
        except OSError:  # the scheduler is gone (Dask retried for its connect timeout)
            raise self._stopped("the connection was lost", "restart `dask scheduler` and its workers") from None
        now = time.monotonic()
        if self.alone_since is None:
            self.alone_since = now
        elif now - self.alone_since > self.worker_timeout:
            wait = f"no worker left and none joined within {self.worker_timeout:g} s"
            raise self._stopped(wait, f"start `dask worker {self.scheduler}`")

    def _stopped(self, why: str, fix: str) -> KalcointError:
        if self.scheduler is None:
            return KalcointError(f"the local workers died and none came back within {self.worker_timeout:g} s")
        if self.out is None:
            return KalcointError(f"scheduler {self.scheduler}: {why}; {fix}, then run again", params="scheduler")
        return KalcointError(
            f"scheduler {self.scheduler}: {why}; the rows done are in out {self.out}: {fix}, then run again with "
            "resume to continue",
            params=("scheduler", "out", "resume"),
        )

"""One bounded queue for heavy work, shared fairly by everyone using one server process.

LIME on VGG16 is about 500 forward passes; a comparison or a sanity check several hundred more.
Run straight in each user's script thread, two such jobs take both cores and every other user
waits with no sign of why. Here heavy work goes through a :class:`JobQueue`: a small pool of
worker threads (fewer than the cores, so light work such as feature maps or Grad-CAM, which
stays in the users' own threads, always finds a core), first come first served, with:

* a place in the queue and an estimated wait for each job ("2 ahead of you, about 1 min");
* at most one unfinished heavy job per owner (a browser session), and at most
  :data:`MAX_PER_CLIENT` per client (an address): one job per session did not bound one
  client, which opened 70 sessions, pressed Run in each and closed them;
* jobs belong to their owners: with ``owner_alive``, a queued job whose owners have all gone
  (the tab closed) is dropped, and a running one stops at its next progress report, so
  abandoned work does not hold the queue (it held it for 27 minutes);
* one job for identical requests (the same ``key``), whoever asked first;
* cancellation between two progress reports (the job's ``progress`` raises
  :class:`~viz_core.errors.Cancelled`), so nothing half-done reaches a cache;
* a job that outlives the page that started it: leaving the page does not stop it, and coming
  back finds it running or finished;
* workers that can be renewed (:meth:`JobQueue.renew_workers`): what a worker thread keeps for
  itself goes with it, which the server's idle trim asks for once a class has gone;
* page runs first (:class:`PageRuns`): while any page is being drawn, a running job waits at
  its next progress report, so students' feature maps and Grad-CAM do not share the cores with
  a LIME run. Measured on the classroom bench before this: with the worker pool alone, 25
  students' light pages had a p95 of 0.95 s, and 3.94 s once 5 heavy jobs ran beside them
  (TensorFlow's thread pool is shared by the whole process, so a job's batches took the cores
  the pages' convolutions needed). The wait is at least :data:`GIVE_WAY_S` and at least
  :data:`PAGE_SHARE` times what the job computed since its last report (at most
  :data:`MAX_GIVE_WAY_S`): with a class clicking without a pause a job still gets about a
  quarter of the time, whatever the size of its batches. A fixed second let a job whose
  batches took 3 s under load run three quarters of the time (py-spy: the job's thread was
  busy 76% of a full class).

Why not :class:`concurrent.futures.ThreadPoolExecutor`: it can report neither a queued job's
place nor cancel a running one, and cannot share one job between identical requests.

Nothing here knows Streamlit; :mod:`ui.feedback` draws a job's status.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Hashable

from viz_core.errors import Cancelled, VizError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
_LOG = logging.getLogger(__name__)  # one line per job event (queued, started, ended), INFO
MAX_QUEUED = 64  # jobs waiting at once; a class of 30 with one job each fits twice
KEEP_FINISHED = 256  # finished jobs remembered for their owners to pick up (oldest dropped)
GIVE_WAY_S = 1.0  # the least a job may wait for page runs at one progress report
PAGE_SHARE = 3.0  # ... and this many times what it computed since its previous report
MAX_GIVE_WAY_S = 10.0  # the longest it waits at one report, however long its batches
MAX_PER_CLIENT = 2  # unfinished heavy jobs one client (an address) may have
SWEEP_S = 1.0  # at most this often a running job's report drops others' abandoned jobs


def default_workers() -> int:
    """Heavy jobs that run at once: one core less than the machine has (at least one), so
    light work keeps a core; each job's TensorFlow ops use every core anyway."""
    return max(1, (os.cpu_count() or 2) - 1)


class QueueFull(VizError):
    """Too many heavy jobs are waiting."""


class OwnerBusy(VizError):
    """The owner already has an unfinished heavy job."""


class ClientBusy(VizError):
    """The client (an address) already has :attr:`JobQueue.max_per_client` unfinished jobs."""


@dataclass(frozen=True)
class JobStatus:
    """A job as its owner sees it.

    Attributes
    ----------
    state : str
        ``"queued"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``.
    ahead : int
        Jobs that start before this one (0 once it runs).
    wait_seconds : float or None
        Estimated seconds until it starts (queued jobs, once a job has finished to measure by).
    fraction : float
        Share done, in [0, 1] (from the job's own progress reports).
    message : str
        The job's last progress message.
    error : str or None
        Why it failed, in the user's words (``state == "failed"``).
    """

    state: str
    ahead: int
    wait_seconds: float | None
    fraction: float
    message: str
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class PageRuns:
    """The page runs (light work) in progress in one process; jobs give way to them.

    A page's run is wrapped in :meth:`drawing`; a run that only waits for a job (drawing its
    bar) steps aside with :meth:`waiting`, so it does not hold up the job it waits for. Jobs
    call :meth:`give_way` between two batches. Runs of one thread nest.
    """

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()
        self._local = threading.local()

    @property
    def now(self) -> int:
        """Page runs drawing at this moment."""
        return self._count

    def _enter(self) -> None:
        with self._changed:
            self._count += 1
            self._local.depth = getattr(self._local, "depth", 0) + 1

    def _leave(self) -> None:
        with self._changed:
            self._count -= 1
            self._local.depth -= 1
            if self._count == 0:
                self._changed.notify_all()

    @contextmanager
    def drawing(self):
        """While the block runs, this thread draws a page: jobs give way."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    @contextmanager
    def waiting(self):
        """Inside :meth:`drawing`: the block only waits (for a job), so jobs need not give
        way to it. Outside, nothing changes."""
        held = getattr(self._local, "depth", 0) > 0
        if held:
            self._leave()
        try:
            yield
        finally:
            if held:
                self._enter()

    def give_way(self, at_most: float = GIVE_WAY_S) -> float:
        """Wait until no page is being drawn, at most ``at_most`` seconds (so a class that
        never stops clicking still lets jobs finish); returns the seconds waited."""
        start = time.monotonic()
        with self._changed:
            self._changed.wait_for(lambda: self._count <= 0, timeout=max(0.0, at_most))
        return time.monotonic() - start


class Job:
    """One unit of heavy work: ``run(progress)``, run once by a worker.

    Made by :meth:`JobQueue.submit`; read through :meth:`JobQueue.status`.
    """

    def __init__(self, key: Hashable, label: str, owner: Hashable,
                 run: Callable[[Callable[[float, str], None]], object], number: int,
                 give_way: Callable[[float], object] | None = None,
                 client: Hashable | None = None,
                 report: Callable[[Job], object] | None = None):
        self.key = key
        self.client = client  # who submitted it, for the per-client limit
        self._report = report  # called at each progress report (the queue's sweep)
        # called at each progress report with the seconds computed since the previous one
        self._give_way = give_way
        self._since = time.monotonic()  # when the job last resumed computing
        self.label = label
        self.owners = {owner}
        self.number = number  # order of submission
        self._run = run
        self._cancel = threading.Event()
        self.finished = threading.Event()
        self.state = QUEUED
        self.fraction = 0.0
        self.message = ""
        self.error: str | None = None
        self.started: float | None = None
        self.ended: float | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        """The ``progress(fraction, message)`` callback handed to the work; raises
        :class:`Cancelled` once the job was cancelled."""
        if self._report is not None:
            self._report(self)  # cancels this job when its owners have gone
        if self._cancel.is_set():
            raise Cancelled(f"{self.label} was stopped.")
        self.fraction = float(min(1.0, max(0.0, fraction)))
        self.message = str(message)
        if self._give_way is not None:
            self._give_way(time.monotonic() - self._since)
            self._since = time.monotonic()
            if self._cancel.is_set():
                raise Cancelled(f"{self.label} was stopped.")

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def execute(self) -> None:
        """Run the work (in a worker thread) and record how it ended."""
        self.state, self.started = RUNNING, time.monotonic()
        self._since = self.started
        try:
            if self._cancel.is_set():
                raise Cancelled(f"{self.label} was stopped.")
            self._run(self.progress)  # results go to the caches the pages read, not here
            self.state, self.fraction = DONE, 1.0
        except Cancelled:
            self.state = CANCELLED
        except VizError as exc:
            self.state, self.error = FAILED, str(exc)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a worker outlives any job
            self.state = FAILED
            self.error = f"something went wrong ({type(exc).__name__}: {str(exc)[:200]})"
        finally:
            self._run = None  # free what the work held (model, images) as soon as it ends
            self.ended = time.monotonic()
            self.finished.set()


def _wait_ended(thread: threading.Thread, deadline: float) -> None:
    """Wait until ``deadline`` (``time.monotonic``) for ``thread`` to have ended, its native
    thread too: Python's ``join`` returns before the thread's C++ thread-local objects are
    destroyed, which is when their memory is freed (Linux shows a native thread in
    ``/proc/self/task`` until then; elsewhere ``join`` is all)."""
    thread.join(max(0.0, deadline - time.monotonic()))
    task = f"/proc/self/task/{thread.native_id}"
    while os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.01)


class JobQueue:
    """A first-come, first-served queue of heavy jobs with ``workers`` worker threads.

    Parameters
    ----------
    workers : int, optional
        Jobs that run at once (default :func:`default_workers`), 1 to 16.
    max_queued : int, optional
        Jobs that may wait at once; more raise :class:`QueueFull`.
    give_way : float, optional
        The least time a running job may wait for page runs (:attr:`pages`) at one progress
        report, in seconds (default :data:`GIVE_WAY_S`; 0: jobs never wait); a job that
        computed longer since its last report may wait :data:`PAGE_SHARE` times that (see
        :meth:`wait_bound`).
    max_per_client : int, optional
        Unfinished jobs one ``client`` of :meth:`submit` may have; more raise
        :class:`ClientBusy`.
    owner_alive : callable, optional
        ``owner_alive(owner)``: whether the owner (a browser session) is still there. A job
        none of whose owners is alive is dropped while queued and stopped at its next
        progress report while running. None: owners never go.
    """

    def __init__(self, workers: int | None = None, *, max_queued: int = MAX_QUEUED,
                 give_way: float = GIVE_WAY_S, max_per_client: int = MAX_PER_CLIENT,
                 owner_alive: Callable[[Hashable], bool] | None = None):
        workers = default_workers() if workers is None else int(workers)
        if not 1 <= workers <= 16:
            raise ValueError(f"workers must be between 1 and 16; got {workers}.")
        self.workers = workers
        self.max_queued = max_queued
        self.max_per_client = int(max_per_client)
        self._owner_alive = owner_alive
        self._swept = 0.0  # when abandoned jobs were last looked for
        self.pages = PageRuns()
        self._give_way_s = float(give_way)
        self._lock = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._by_key: dict[Hashable, Job] = {}  # unfinished and recently finished jobs
        self._by_owner: dict[Hashable, Job] = {}
        self._done_order: collections.deque[Job] = collections.deque()
        self._durations: collections.deque[float] = collections.deque(maxlen=20)
        self._numbers = itertools.count()
        self._closed = False
        self._generation = 0  # workers of an older generation leave once idle
        self.renewed = 0  # worker threads replaced so far
        self._threads: list[threading.Thread] = []
        with self._lock:
            for i in range(workers):
                self._threads.append(self._start_worker(i))

    # -- asking ----------------------------------------------------------------------------
    def submit(self, key: Hashable, run: Callable[[Callable[[float, str], None]], object], *,
               owner: Hashable, label: str = "The job", client: Hashable | None = None) -> Job:
        """Queue ``run(progress)`` under ``key`` for ``owner``, or join the unfinished job with
        the same key.

        ``client`` (an address) counts the job against :attr:`max_per_client`; joining
        another's job costs nothing.

        Raises
        ------
        OwnerBusy
            When ``owner`` already has an unfinished job with another key.
        ClientBusy
            When ``client`` already has :attr:`max_per_client` unfinished jobs.
        QueueFull
            When :attr:`max_queued` jobs are already waiting.
        """
        with self._lock:
            if self._closed:
                raise QueueFull("The server is shutting down; try again in a moment.")
            self._sweep()
            same = self._by_key.get(key)
            if same is not None and not same.finished.is_set() and not same.cancelled:
                mine = self._by_owner.get(owner)
                if mine is not None and mine is not same and not mine.finished.is_set():
                    raise OwnerBusy(self._busy_message(mine))
                same.owners.add(owner)
                self._by_owner[owner] = same
                return same
            mine = self._by_owner.get(owner)
            if mine is not None and not mine.finished.is_set():
                raise OwnerBusy(self._busy_message(mine))
            if client is not None:
                theirs = sum(1 for j in self._unfinished() if j.client == client)
                if theirs >= self.max_per_client:
                    raise ClientBusy(
                        f"Your address ({client}) already has {theirs} heavy jobs waiting or "
                        f"running on this server; the limit is {self.max_per_client} per "
                        "address. Try again when one of them has finished.")
            if len(self._waiting) >= self.max_queued:
                raise QueueFull(f"{len(self._waiting)} heavy jobs are already waiting on this "
                                "server; try again in a few minutes.")
            job = Job(key, label, owner, run, next(self._numbers),
                      give_way=(lambda ran: self.pages.give_way(self.wait_bound(ran)))
                      if self._give_way_s > 0 else None,
                      client=client,
                      report=self._reported if self._owner_alive is not None else None)
            self._waiting.append(job)
            self._by_key[key] = job
            self._by_owner[owner] = job
            self._lock.notify()
            _LOG.info("job %d queued (%s), %d waiting", job.number, label, len(self._waiting))
            return job

    def wait_bound(self, ran: float) -> float:
        """The longest a job that computed ``ran`` seconds since its last progress report
        waits for page runs there: ``give_way`` seconds, or :data:`PAGE_SHARE` times ``ran``
        when longer, at most :data:`MAX_GIVE_WAY_S` (and never less than ``give_way``)."""
        return max(self._give_way_s, min(MAX_GIVE_WAY_S, PAGE_SHARE * max(0.0, ran)))

    def job_of(self, owner: Hashable) -> Job | None:
        """The owner's latest job (unfinished, or finished and not yet forgotten)."""
        with self._lock:
            return self._by_owner.get(owner)

    def forget(self, owner: Hashable) -> None:
        """The owner has seen its finished job; drop the reference."""
        with self._lock:
            job = self._by_owner.get(owner)
            if job is not None and job.finished.is_set():
                del self._by_owner[owner]

    def status(self, job: Job) -> JobStatus:
        with self._lock:
            ahead = 0
            if job.state == QUEUED:
                ahead = next((i for i, j in enumerate(self._waiting) if j is job),
                             len(self._waiting))
                running = sum(1 for j in self._by_key.values() if j.state == RUNNING)
                ahead += running
            wait = None
            if job.state == QUEUED and self._durations:
                mean = sum(self._durations) / len(self._durations)
                wait = mean * ahead / self.workers
            return JobStatus(job.state, ahead, wait, job.fraction, job.message, job.error)

    def cancel(self, job: Job, owner: Hashable) -> None:
        """Stop ``job`` for ``owner``: it ends when no other owner still waits for it."""
        with self._lock:
            job.owners.discard(owner)
            if self._by_owner.get(owner) is job:
                del self._by_owner[owner]
            if job.owners:
                return
            job.cancel()
            if job.state == QUEUED and job in self._waiting:
                self._waiting.remove(job)
                self._drop(job)

    def counts(self) -> dict[str, int]:
        """How many jobs wait and run now (abandoned ones dropped first)."""
        with self._lock:
            self._sweep()
            running = sum(1 for j in self._by_key.values() if j.state == RUNNING)
            return {"queued": len(self._waiting), "running": running}

    # -- owners that have gone -------------------------------------------------------------
    def _unfinished(self):
        return [*self._waiting, *(j for j in self._by_key.values() if j.state == RUNNING)]

    def _abandoned(self, job: Job) -> bool:
        """True when ``owner_alive`` says none of the job's owners is still there."""
        if self._owner_alive is None or job.cancelled:
            return False
        for owner in list(job.owners):
            try:
                if self._owner_alive(owner):
                    return False
            except Exception:  # noqa: BLE001 - a failing check must not stop others' work
                _LOG.exception("owner_alive failed; the job is kept")
                return False
        return True

    def _sweep(self) -> None:
        """Drop queued jobs whose owners have gone and cancel running ones (they stop at
        their next progress report). Called with the lock held."""
        if self._owner_alive is None:
            return
        self._swept = time.monotonic()
        for job in [j for j in self._waiting if self._abandoned(j)]:
            self._waiting.remove(job)
            self._drop(job)
            _LOG.info("job %d cancelled (%s): its sessions have gone", job.number, job.label)
        for job in self._by_key.values():
            if job.state == RUNNING and self._abandoned(job):
                job.cancel()
                _LOG.info("job %d stopping (%s): its sessions have gone", job.number,
                          job.label)

    def _drop(self, job: Job) -> None:
        job.cancel()
        job.state, job.ended = CANCELLED, time.monotonic()
        job._run = None  # what the work would have held (model, images) goes now
        job.finished.set()
        for owner in list(job.owners):
            if self._by_owner.get(owner) is job:
                del self._by_owner[owner]
        self._remember(job)

    def _reported(self, job: Job) -> None:
        """A running job's progress report: it stops if its owners have gone, and now and
        then the queue drops other abandoned jobs (no thread of its own needed)."""
        with self._lock:
            if self._abandoned(job):
                job.cancel()
            if time.monotonic() - self._swept >= SWEEP_S:
                self._sweep()

    def _remember(self, job: Job) -> None:
        """Keep a finished job for its owners, forgetting the oldest beyond KEEP_FINISHED.
        Called with the lock held."""
        self._done_order.append(job)
        while len(self._done_order) > KEEP_FINISHED:
            old = self._done_order.popleft()
            if self._by_key.get(old.key) is old:
                del self._by_key[old.key]
            for owner in list(old.owners):
                if self._by_owner.get(owner) is old:
                    del self._by_owner[owner]

    def renew_workers(self, wait: float = 0.0) -> int:
        """Replace every worker thread with a new one, each as soon as it is idle (a running
        job finishes first); returns how many will be replaced.

        What a thread keeps for itself goes with it. TensorFlow's oneDNN kernels keep, per
        thread, primitives and buffers for every shape they ran, which neither a garbage
        collection nor ``malloc_trim`` can hand back: a probe held 49 MB after 15 shapes of a
        small model, and 42 MB of it came back when the thread ended. The server's idle trim
        (:mod:`ui.idle`) calls this, so a worker that met many shapes (models of other input
        sizes) does not keep them all day; on the class bench, whose jobs run the same few
        shapes, it made no visible difference. The next job builds its kernels again.

        ``wait``: at most this many seconds to wait until the old threads have ended (their
        memory is freed then, so a trim that follows can hand it back); 0 returns at once.
        """
        with self._lock:
            if self._closed:
                return 0
            self._generation += 1
            old = list(self._threads)
            self._lock.notify_all()
        deadline = time.monotonic() + max(0.0, float(wait))
        for thread in old:
            _wait_ended(thread, deadline)
        return len(old)

    def worker_threads(self) -> list[threading.Thread]:
        """The current worker threads (a renewed one is replaced in place)."""
        with self._lock:
            return list(self._threads)

    def close(self) -> None:
        """Stop the workers after the running jobs (queued ones are cancelled)."""
        with self._lock:
            self._closed = True
            for job in self._waiting:
                job.cancel()
                job.state, job._run = CANCELLED, None
                job.finished.set()
            self._waiting.clear()
            self._lock.notify_all()

    # -- working ---------------------------------------------------------------------------
    def _busy_message(self, job: Job) -> str:
        return (f"You already have heavy work on this server ({job.label}); it has to finish "
                "or be stopped before the next one starts.")

    def _start_worker(self, index: int) -> threading.Thread:
        """Start worker ``index`` of the current generation (call with the lock held)."""
        thread = threading.Thread(target=self._work, args=(self._generation,),
                                  name=f"heavy-job-{index}", daemon=True)
        thread.start()
        return thread

    def _work(self, generation: int) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed and generation == self._generation:
                    self._lock.wait()
                if self._closed and not self._waiting:
                    return
                if generation != self._generation:  # renewed: a new thread takes this place
                    index = self._threads.index(threading.current_thread())
                    self._threads[index] = self._start_worker(index)
                    self.renewed += 1
                    return
                job = self._waiting.popleft()
                if self._abandoned(job):  # its sessions went while it waited
                    self._drop(job)
                    _LOG.info("job %d cancelled (%s): its sessions have gone", job.number,
                              job.label)
                    continue
                job.state = RUNNING  # seen as running before the lock is released
                _LOG.info("job %d started (%s)", job.number, job.label)
            job.execute()
            _LOG.info("job %d %s (%s) after %.1f s", job.number, job.state, job.label,
                      job.ended - job.started)
            with self._lock:
                if job.state == DONE:
                    self._durations.append(job.ended - job.started)
                self._remember(job)

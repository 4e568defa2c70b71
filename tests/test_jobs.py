"""The heavy-job queue: order, places, sharing, one job per owner, cancellation, failures."""
from __future__ import annotations

import threading
import time

import pytest

from viz_core.errors import ParameterError
from viz_core.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobQueue, OwnerBusy, QueueFull


def gate():
    """A job body that reports progress 0.5 and waits until its event is set."""
    release = threading.Event()
    started = threading.Event()

    def run(progress):
        started.set()
        progress(0.5, "half way")
        assert release.wait(10)
        progress(1.0, "done")

    return run, release, started


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def queue():
    q = JobQueue(workers=1)
    yield q
    q.close()


def test_jobs_run_in_order_with_their_place_in_the_queue(queue):
    bodies = [gate() for _ in range(3)]
    jobs = [queue.submit(f"job {i}", run, owner=f"user {i}", label=f"job {i}")
            for i, (run, _, _) in enumerate(bodies)]
    assert bodies[0][2].wait(10)
    wait_for(lambda: queue.status(jobs[0]).fraction == 0.5)
    first, second, third = (queue.status(j) for j in jobs)
    assert (first.state, first.ahead, first.fraction, first.message) == (
        RUNNING, 0, 0.5, "half way")
    assert (second.state, second.ahead) == (QUEUED, 1)  # the running job is ahead
    assert (third.state, third.ahead) == (QUEUED, 2)
    assert second.wait_seconds is None  # nothing finished yet to estimate from
    assert queue.counts() == {"queued": 2, "running": 1}
    bodies[0][1].set()
    assert jobs[0].finished.wait(10)
    assert bodies[1][2].wait(10)
    assert queue.status(jobs[0]).state == DONE and queue.status(jobs[0]).fraction == 1.0
    third = queue.status(jobs[2])
    assert third.ahead == 1 and third.wait_seconds is not None and third.wait_seconds >= 0
    for _, release, _ in bodies[1:]:
        release.set()
    assert all(j.finished.wait(10) for j in jobs)
    assert [queue.status(j).state for j in jobs] == [DONE, DONE, DONE]
    assert [j.started for j in jobs] == sorted(j.started for j in jobs)  # first come first


def test_no_more_jobs_run_at_once_than_workers():
    q = JobQueue(workers=2)
    running, most = [0], [0]
    lock = threading.Lock()

    def run(progress):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    jobs = [q.submit(i, run, owner=i) for i in range(8)]
    assert all(j.finished.wait(10) for j in jobs)
    assert most[0] == 2
    q.close()


def test_identical_requests_share_one_job_and_one_owner_holds_one_job(queue):
    run, release, started = gate()
    calls = []
    job = queue.submit("lime:vgg16:cat", lambda p: (calls.append(1), run(p)), owner="ann")
    same = queue.submit("lime:vgg16:cat", lambda p: calls.append(2), owner="bob")
    assert same is job and job.owners == {"ann", "bob"}
    with pytest.raises(OwnerBusy, match="You already have heavy work"):
        queue.submit("compare:vgg16", lambda p: None, owner="ann", label="Compare")
    release.set()
    assert job.finished.wait(10)
    assert calls == [1]  # one run for both
    assert queue.job_of("bob") is job
    # Once it finished, the owner may start another job.
    other = queue.submit("compare:vgg16", lambda p: None, owner="ann")
    assert other.finished.wait(10) and queue.status(other).state == DONE


def test_cancel_a_queued_and_a_running_job(queue):
    run, release, started = gate()
    running = queue.submit("a", run, owner="ann")
    waiting = queue.submit("b", lambda p: pytest.fail("a cancelled job ran"), owner="bob")
    assert started.wait(10)
    queue.cancel(waiting, "bob")
    assert queue.status(waiting).state == CANCELLED and queue.counts()["queued"] == 0
    queue.cancel(running, "ann")
    release.set()  # the work reports progress once more, and stops there
    assert running.finished.wait(10)
    assert queue.status(running).state == CANCELLED
    assert queue.job_of("ann") is None


def test_a_job_another_owner_waits_for_is_not_cancelled_for_them(queue):
    run, release, started = gate()
    job = queue.submit("k", run, owner="ann")
    queue.submit("k", run, owner="bob")
    queue.cancel(job, "ann")
    release.set()
    assert job.finished.wait(10) and queue.status(job).state == DONE


def test_failures_are_reported_in_words_and_the_worker_goes_on(queue):
    def bad_input(progress):
        raise ParameterError("samples must be between 10 and 5,000; got 0.")

    def bug(progress):
        raise ZeroDivisionError("division by zero")

    first = queue.submit(1, bad_input, owner="ann")
    second = queue.submit(2, bug, owner="bob")
    third = queue.submit(3, lambda p: None, owner="cid")
    assert all(j.finished.wait(10) for j in (first, second, third))
    assert queue.status(first).error == "samples must be between 10 and 5,000; got 0."
    assert queue.status(second).state == FAILED
    assert queue.status(second).error == ("something went wrong (ZeroDivisionError: division by "
                                          "zero)")
    assert queue.status(third).state == DONE


def test_a_full_queue_refuses_with_a_message():
    q = JobQueue(workers=1, max_queued=2)
    run, release, started = gate()
    q.submit(0, run, owner=0)
    assert started.wait(10)
    q.submit(1, lambda p: None, owner=1)
    q.submit(2, lambda p: None, owner=2)
    with pytest.raises(QueueFull, match="2 heavy jobs are already waiting"):
        q.submit(3, lambda p: None, owner=3)
    release.set()
    q.close()


def test_worker_count_is_bounded():
    with pytest.raises(ValueError, match="between 1 and 16"):
        JobQueue(workers=0)


def test_a_job_that_tries_to_end_the_process_fails_and_the_worker_goes_on(queue):
    def exits(progress):
        raise SystemExit(2)

    first = queue.submit(1, exits, owner="ann")
    second = queue.submit(2, lambda p: None, owner="bob")
    assert first.finished.wait(10) and second.finished.wait(10)
    assert queue.status(first).state == FAILED
    assert queue.status(first).error == "something went wrong (SystemExit: 2)"
    assert queue.status(second).state == DONE


def test_a_job_cancelled_while_queued_lets_go_of_what_its_work_held(queue):
    import gc
    import weakref

    import numpy as np

    run, release, started = gate()
    queue.submit("a", run, owner="ann")
    held = np.zeros(1000)  # stands for a model and images the work's closure keeps
    gone = weakref.ref(held)
    waiting = queue.submit("b", lambda p, held=held: held.sum(), owner="bob")
    assert started.wait(10)
    del held
    queue.cancel(waiting, "bob")
    gc.collect()
    assert gone() is None  # the queue still knows the job ("b"), not its work
    release.set()


def test_each_job_is_logged_queued_started_and_ended_by_number(queue, caplog):
    run, release, started = gate()
    with caplog.at_level("INFO", logger="viz_core.jobs"):
        jobs = [queue.submit(0, run, owner=0, label="LIME")]
        assert started.wait(10)
        jobs.append(queue.submit(1, lambda p: None, owner=1, label="Compare"))
        release.set()
        assert all(j.finished.wait(10) for j in jobs)
        wait_for(lambda: sum("after" in r.getMessage() for r in caplog.records) == 2)
    lines = [r.getMessage().split(" after ")[0] for r in caplog.records  # not other tests'
             if "(LIME)" in r.getMessage() or "(Compare)" in r.getMessage()]
    first, second = (j.number for j in jobs)
    assert lines == [f"job {first} queued (LIME), 1 waiting", f"job {first} started (LIME)",
                     f"job {second} queued (Compare), 1 waiting", f"job {first} done (LIME)",
                     f"job {second} started (Compare)", f"job {second} done (Compare)"]

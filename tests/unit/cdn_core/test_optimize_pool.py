"""The encoder pool: single-flight per variant key, the pending bound, cancellation and
shutdown. Jobs block on threading events, never on sleeps."""

import asyncio
import threading

import pytest

from cdn_core.optimize.pool import EncodePool, PoolBusy, PoolClosed


@pytest.fixture
def pool():
    p = EncodePool(workers=2, max_pending=2)
    yield p
    p.close()


class Gate:
    """A job that counts its runs and waits until released."""

    def __init__(self, value="done"):
        self.value = value
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        self.started.set()
        assert self.release.wait(5)
        return self.value


async def test_n_concurrent_requests_for_one_variant_encode_it_once(pool):
    job = Gate()
    stored = []
    tasks = [asyncio.ensure_future(pool.run(("k", "br"), job, stored.append)) for _ in range(50)]
    await asyncio.sleep(0)
    assert await asyncio.to_thread(job.started.wait, 5)
    job.release.set()
    results = await asyncio.gather(*tasks)
    assert results == ["done"] * 50
    assert job.calls == 1
    assert stored == ["done"]  # on_result ran once
    assert pool.jobs_started == 1 and pool.jobs_joined == 49
    assert pool.pending == 0


async def test_different_keys_run_separately(pool):
    a, b = Gate("a"), Gate("b")
    a.release.set()
    b.release.set()
    assert await asyncio.gather(pool.run("a", a), pool.run("b", b)) == ["a", "b"]
    assert (a.calls, b.calls) == (1, 1)


async def test_the_pending_bound_refuses_instead_of_queueing(pool):
    jobs = [Gate(), Gate()]
    running = [asyncio.ensure_future(pool.run(i, j)) for i, j in enumerate(jobs)]
    await asyncio.sleep(0)
    assert pool.busy("third")
    assert not pool.busy(0)  # joining a pending job is always allowed
    with pytest.raises(PoolBusy):
        await pool.run("third", Gate())
    for j in jobs:
        j.release.set()
    await asyncio.gather(*running)
    assert not pool.busy("third")


async def test_a_cancelled_caller_does_not_cancel_the_shared_job(pool):
    job = Gate()
    stored = []
    first = asyncio.ensure_future(pool.run("k", job, stored.append))
    second = asyncio.ensure_future(pool.run("k", job))
    await asyncio.sleep(0)
    first.cancel()
    job.release.set()
    assert await second == "done"
    assert first.cancelled()
    assert stored == ["done"] and job.calls == 1


async def test_the_result_is_recorded_even_when_every_caller_left(pool):
    job = Gate()
    stored = []
    caller = asyncio.ensure_future(pool.run("k", job, stored.append))
    await asyncio.sleep(0)
    caller.cancel()
    job.release.set()
    for _ in range(200):
        if stored:
            break
        await asyncio.sleep(0.005)
    assert stored == ["done"]


async def test_errors_reach_every_caller(pool):
    def boom():
        raise ValueError("bad input")

    results = await asyncio.gather(pool.run("k", boom), pool.run("k", boom), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    assert pool.pending == 0


async def test_jobs_run_off_the_event_loop(pool):
    seen = []
    await pool.run("k", lambda: seen.append(threading.current_thread().name))
    assert seen[0].startswith("cdn-optimize")


async def test_closed_pool_refuses_jobs():
    p = EncodePool(workers=1, max_pending=4)
    p.close()
    with pytest.raises(PoolClosed):
        await p.run("k", lambda: 1)

"""R5: threads and fork.

* 16 threads doing round trips at once, each with its own data, key binding
  and expected bytes: no error, no cross-talk, one Guest per thread.
* A child forked after the parent used the guest (os.fork and
  multiprocessing's 'fork' context, as with gunicorn --preload) seals and
  opens correctly and does not hang (every wait has a timeout).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import signal
import threading
import time

import pytest

from mcfields._guest import Guest, get_guest
from mcfields.crypto import Keyring, binding, generate_key

# These tests fork a process that runs threads on purpose (gunicorn
# --preload does): Python 3.12+ warns about exactly that.
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)

THREADS = 16
ROUNDS_FAST = 2000
ROUNDS_SLOW = 10_000
CHILD_TIMEOUT = 60.0

KEY, NONCE = bytes(range(32)), bytes(range(100, 124))


def _run_threads(ring: Keyring, rounds: int) -> list[tuple[int, Guest]]:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    guests: list[tuple[int, Guest]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            rng = random.Random(n)
            tag = f"thread-{n:02d}".encode()
            barrier.wait(timeout=30)
            for i in range(rounds):
                text = tag + i.to_bytes(4, "little") + rng.randbytes(rng.randint(0, 300))
                context = binding(f"tests.T{n}.field", str(i))
                envelope = ring.seal(text, context)
                opened = ring.open(envelope, context)
                if opened != text:
                    raise AssertionError(f"thread {n} round {i}: got another value")
            # Deterministic bytes on the same thread's guest: compare later
            # with the single-threaded result.
            guest = get_guest()
            with lock:
                guests.append((n, guest))
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    return guests


def _check_one_guest_per_thread(guests: list[tuple[int, Guest]]) -> None:
    assert len(guests) == THREADS
    assert len({id(g) for _, g in guests}) == THREADS
    assert all(g is not get_guest() for _, g in guests)


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring.from_strings([generate_key(), generate_key()])


def test_threads_round_trips(ring: Keyring) -> None:
    _check_one_guest_per_thread(_run_threads(ring, ROUNDS_FAST))


@pytest.mark.slow
def test_threads_round_trips_slow(ring: Keyring) -> None:
    _check_one_guest_per_thread(_run_threads(ring, ROUNDS_SLOW))


def test_threads_exact_bytes_no_cross_talk() -> None:
    """Each thread seals its own values with a fixed nonce on its own Guest;
    every result must equal the single-threaded one for that value."""
    rounds = 300
    values = {n: [random.Random(n * 7919 + i).randbytes(50 + 13 * n) for i in range(rounds)]
              for n in range(THREADS)}
    reference = Guest()
    expected = {n: [reference.seal(KEY, NONCE, str(n).encode(), v) for v in vals]
                for n, vals in values.items()}
    got: dict[int, list[bytes]] = {}
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        guest = Guest()
        barrier.wait(timeout=30)
        out = []
        for v in values[n]:
            sealed = guest.seal(KEY, NONCE, str(n).encode(), v)
            assert guest.open(KEY, str(n).encode(), sealed) == v
            out.append(sealed)
        got[n] = out

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got == expected


# -- fork ---------------------------------------------------------------------


def _child_work(seed: int) -> dict:
    """What a forked child does: fixed-nonce seal, keyring round trip."""
    ring = Keyring.from_strings([_FORK_KEY])
    context = binding("tests.Fork.field", str(seed))
    text = f"child {seed} ".encode() * 20
    envelope = ring.seal(text, context)
    return {
        "pid": os.getpid(),
        "fixed": Guest().seal(KEY, NONCE, b"fork", text),
        "round_trip": ring.open(envelope, context) == text,
        "parent_envelope": ring.open(_PARENT_ENVELOPE[0], _PARENT_CONTEXT),
        "envelope": envelope,
        "guest_id": id(get_guest()),
    }


_FORK_KEY = generate_key()
_PARENT_CONTEXT = binding("tests.Fork.field", "parent")
_PARENT_ENVELOPE: list[bytes] = []


def _parent_uses_guest() -> int:
    """The parent seals before forking (compiles the module, creates a guest)."""
    ring = Keyring.from_strings([_FORK_KEY])
    _PARENT_ENVELOPE[:] = [ring.seal(b"sealed in the parent", _PARENT_CONTEXT)]
    assert ring.open(_PARENT_ENVELOPE[0], _PARENT_CONTEXT) == b"sealed in the parent"
    return id(get_guest())


def _fork_and_collect(seed: int) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_fd)
            payload = pickle.dumps(("ok", _child_work(seed)))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent
            payload, status = pickle.dumps(("error", repr(exc))), 1
        try:
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
            pytest.fail(f"forked child hung for {CHILD_TIMEOUT} s")
        time.sleep(0.01)
    with os.fdopen(read_fd, "rb") as src:
        kind, result = pickle.loads(src.read())
    assert kind == "ok", result
    assert os.waitstatus_to_exitcode(status) == 0
    return result


def _check_child(result: dict, seed: int, parent_guest_id: int) -> None:
    text = f"child {seed} ".encode() * 20
    assert result["pid"] != os.getpid()
    assert result["fixed"] == Guest().seal(KEY, NONCE, b"fork", text)
    assert result["round_trip"] is True
    assert result["parent_envelope"] == b"sealed in the parent"
    # The child's envelope opens in the parent: same key, same format.
    ring = Keyring.from_strings([_FORK_KEY])
    assert ring.open(result["envelope"], binding("tests.Fork.field", str(seed))) == text
    # The child made its own guest instead of reusing the parent's Store.
    assert result["guest_id"] != parent_guest_id


@pytest.mark.parametrize("child_cache", ["compiled-module cache", "no cache: child compiles"])
def test_os_fork_after_parent_used_guest(monkeypatch, tmp_path, child_cache: str) -> None:
    parent_guest_id = _parent_uses_guest()
    # The child rebuilds its Engine and Module; without a cache it compiles,
    # which is where an inherited compile thread pool could hang it.
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", str(tmp_path) if "compiled" in child_cache else "")
    for seed in range(3):
        _check_child(_fork_and_collect(seed), seed, parent_guest_id)
    # The parent is unaffected.
    assert id(get_guest()) == parent_guest_id
    ring = Keyring.from_strings([_FORK_KEY])
    assert ring.open(_PARENT_ENVELOPE[0], _PARENT_CONTEXT) == b"sealed in the parent"


def test_os_fork_while_another_thread_is_sealing() -> None:
    """Fork while a parent thread is inside guest calls (its Store may be
    mid-call at the moment of fork); the child must still work."""
    parent_guest_id = _parent_uses_guest()
    stop = threading.Event()
    busy_errors: list[BaseException] = []

    def busy() -> None:
        ring = Keyring.from_strings([generate_key()])
        try:
            while not stop.is_set():
                ring.open(ring.seal(os.urandom(2000), b"busy"), b"busy")
        except BaseException as exc:  # noqa: BLE001
            busy_errors.append(exc)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        time.sleep(0.05)
        for seed in range(10, 15):
            _check_child(_fork_and_collect(seed), seed, parent_guest_id)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not busy_errors


def _pool_task(seed: int) -> dict:
    return _child_work(seed)


def test_multiprocessing_fork_context(monkeypatch) -> None:
    parent_guest_id = _parent_uses_guest()
    monkeypatch.setenv("MCFIELDS_CACHE_DIR", "")  # children compile
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map_async(_pool_task, range(20, 26)).get(timeout=CHILD_TIMEOUT)
    assert all(r["pid"] != os.getpid() for r in results)
    for seed, result in zip(range(20, 26), results, strict=True):
        _check_child(result, seed, parent_guest_id)


def _process_target(queue, seed: int) -> None:
    queue.put(_child_work(seed))


def test_multiprocessing_fork_process() -> None:
    parent_guest_id = _parent_uses_guest()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_process_target, args=(queue, 30))
    proc.start()
    try:
        result = queue.get(timeout=CHILD_TIMEOUT)
    finally:
        proc.join(timeout=CHILD_TIMEOUT)
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == 0
    _check_child(result, 30, parent_guest_id)


FRESH_PROCESS_SCRIPT = r"""
import os, sys, time
from mcfields._guest import Guest
from mcfields._guest import runtime
key, nonce = bytes(range(32)), bytes(range(100, 124))
parent = Guest().seal(key, nonce, b"ad", b"preloaded")   # the parent compiles here
assert runtime._compiled is not None
pids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        try:
            ok = Guest().seal(key, nonce, b"ad", b"preloaded") == parent  # the child compiles
            guest = Guest()
            ok = ok and guest.open(key, b"ad", parent) == b"preloaded"
        finally:
            os._exit(0 if ok else 3)
    pids.append(pid)
deadline = time.monotonic() + float(sys.argv[1])
for pid in pids:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.waitstatus_to_exitcode(status) != 0:
                print("child failed", status); sys.exit(1)
            break
        if time.monotonic() > deadline:
            for other in pids:
                try:
                    os.kill(other, 9)
                except ProcessLookupError:
                    pass
            print("child hung"); sys.stdout.flush(); os._exit(2)
        time.sleep(0.01)
print("ok")
"""


def test_fork_like_gunicorn_preload_in_fresh_process(tmp_path) -> None:
    """A fresh process compiles the module (no cache), seals, then forks
    workers that compile again and seal: none hangs."""
    import subprocess
    import sys

    env = dict(os.environ, MCFIELDS_CACHE_DIR="")
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(CHILD_TIMEOUT)],
        capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT + 60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", (result.stdout, result.stderr)

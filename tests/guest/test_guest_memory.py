"""Guest memory is given back after large values (issue item 20).

Wasm linear memory never shrinks, and each thread keeps its own guest, so
without a release every thread that once handled a large value would keep
that much memory for its whole life (8 idle pool threads that each sealed
60 MiB held about 420 MiB).  A thread's guest that grew past
``RETIRE_MEMORY_SIZE`` is dropped after the operation and freed; the thread
gets a fresh guest next time.
"""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mcfields._guest import Guest, get_guest
from mcfields._guest.runtime import RETIRE_MEMORY_SIZE
from mcfields.crypto import Keyring, binding, generate_key

MiB = 1 << 20


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring.from_strings([generate_key()])


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Objects must be freed by reference counting alone: a reference cycle
    would keep a dropped store (and its memory) until some later collection."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def in_new_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` on a fresh thread, which starts without a guest."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the worker thread hung"
    if errors:
        raise errors[0]
    return result[0]


@pytest.mark.parametrize("op", ["seal", "open"])
def test_large_value_gives_the_guest_memory_back(
    ring: Keyring, no_cyclic_gc: None, op: str
) -> None:
    ctx = binding("tests.Big.field", "1")
    text = os.urandom(6 * MiB)
    envelope = ring.seal(text, ctx)

    def work() -> tuple[bool, bool, int, bool]:
        guest = get_guest()
        small = guest.memory_size
        assert small < RETIRE_MEMORY_SIZE
        guest_ref, store_ref = weakref.ref(guest), weakref.ref(guest._store)
        del guest
        if op == "seal":
            assert ring.open(ring.seal(text, ctx), ctx) == text  # open on the next guest
        else:
            assert ring.open(envelope, ctx) == text
        after = get_guest()
        return (guest_ref() is None, store_ref() is None, after.memory_size,
                after is not guest_ref())

    guest_freed, store_freed, size_after, replaced = in_new_thread(work)
    assert replaced, "the thread kept the guest that grew for the large value"
    assert size_after < RETIRE_MEMORY_SIZE
    assert guest_freed and store_freed, "the dropped guest or its Store was not freed"


def test_values_below_the_threshold_keep_the_guest(ring: Keyring) -> None:
    ctx = binding("tests.Big.field", "2")
    text = os.urandom(RETIRE_MEMORY_SIZE // 2)

    def work() -> bool:
        guest = get_guest()
        assert ring.open(ring.seal(text, ctx), ctx) == text
        return get_guest() is guest

    assert in_new_thread(work)


def test_a_guest_created_directly_is_not_dropped() -> None:
    """Only the per-thread guests of get_guest() are managed; a Guest made by
    hand stays usable however large it grew."""
    guest = Guest()
    key, text = os.urandom(32), os.urandom(RETIRE_MEMORY_SIZE + MiB)
    sealed = guest.seal(key, bytes(24), b"", text)
    assert guest.memory_size > RETIRE_MEMORY_SIZE
    assert guest.open(key, b"", sealed) == text


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_idle_threads_do_not_keep_large_guest_memory(ring: Keyring) -> None:
    """The scenario of the issue, scaled down: 4 pool threads each seal and
    open one 40 MiB value (one at a time), then stay alive and idle.

    Without the release they keep about 4 x 40 MiB of guest memory between
    them; the bound below is half of that, so allocator noise does not
    matter.  Values over 32 MiB are always mmap'ed by glibc's malloc, so the
    freed plaintexts and envelopes go back to the system too.
    """
    threads_n, size = 4, 40 * MiB
    text = os.urandom(size)
    ctx = binding("tests.Big.field", "3")
    lock = threading.Lock()
    done = threading.Barrier(threads_n + 1)
    release = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with lock:
                if ring.open(ring.seal(text, ctx), ctx) != text:
                    raise AssertionError("wrong plaintext")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        done.wait(timeout=120)
        release.wait(timeout=120)

    # Warm up this process's allocator and wasmtime state on another thread.
    in_new_thread(lambda: ring.open(ring.seal(b"warm", ctx), ctx))
    before = _rss()
    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in threads:
        t.start()
    try:
        done.wait(timeout=120)
        grown = _rss() - before
    finally:
        release.set()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert grown < threads_n * size // 2, f"idle threads keep {grown / MiB:.0f} MiB"

"""Write each operation once, run it sync or async.

An operation is a generator that *yields* the calls with side effects it needs
(``yield call(store.search, scope, queries)``) and gets their results back, so the
logic exists once and only the way side effects are performed differs. ``run_sync``
performs them directly; ``run_async`` awaits the component's ``a<method>`` twin when
it has one (network clients) and otherwise runs the blocking call in a worker thread,
so the event loop is never blocked. A call names a bound method rather than a method
name so that type checkers and renames see it; the twin is looked up on its owner.

An operation that fans out yields ``parallel(ops, workers)`` and gets each one's
result or exception back, in order: a bounded thread pool when run sync, a bounded
``gather`` when run async. So a fan-out, and what is done with its failures, is
written once too, not once per twin.

This module is public API, alongside ``lightmem_core``'s own exports: the framework
adapters write their operations with it (they may use nothing private of the core), and
so may any other integration that wants one code path for both worlds.
"""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Optional, Sequence, TypeVar, Union

__all__ = [
    "Call",
    "Op",
    "Parallel",
    "call",
    "parallel",
    "run_async",
    "run_many_async",
    "run_many_sync",
    "run_sync",
]

T = TypeVar("T")


@dataclass
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parallel:
    ops: list[Op[Any]]
    workers: int


Op = Generator[Union[Call, Parallel], Any, T]


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Call:
    """``fn`` should be a bound method: its owner's ``a<name>`` twin, if any, is what ``run_async`` awaits."""
    return Call(fn, args, kwargs)


def parallel(ops: Sequence[Op[Any]], workers: int) -> Parallel:
    """At most ``workers`` of ``ops`` at a time. The results come back with exceptions in
    place of the failed ones' results: one failed branch is something to report or retry,
    not a reason to lose what the others did."""
    return Parallel(list(ops), workers)


def _twin(fn: Callable[..., Any]) -> Optional[Callable[..., Any]]:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__name__", None)
    if owner is None or not name:
        return None
    twin = getattr(owner, "a" + name, None)
    return twin if twin is not None and inspect.iscoroutinefunction(twin) else None


def run_sync(op: Op[T]) -> T:
    try:
        step = next(op)
        while True:
            try:
                if isinstance(step, Parallel):
                    result: Any = run_many_sync(step.ops, step.workers)
                else:
                    result = step.fn(*step.args, **step.kwargs)
            except BaseException as exc:  # hand the error to the operation, as a plain call would
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value


async def run_async(op: Op[T]) -> T:
    try:
        step = next(op)
        while True:
            try:
                if isinstance(step, Parallel):
                    result: Any = await run_many_async(step.ops, step.workers)
                elif (native := _twin(step.fn)) is not None:
                    result = await native(*step.args, **step.kwargs)
                else:
                    result = await asyncio.to_thread(step.fn, *step.args, **step.kwargs)
            except BaseException as exc:
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value


def run_many_sync(ops: list[Op[T]], workers: int) -> list[T | BaseException]:
    """Run independent operations on a bounded thread pool; errors are returned, not raised."""

    def one(op: Op[T]) -> T | BaseException:
        try:
            return run_sync(op)
        except Exception as exc:  # noqa: BLE001 - reported per operation
            return exc

    if workers <= 1:
        return [one(op) for op in ops]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, ops))


async def run_many_async(ops: list[Op[T]], limit: int) -> list[T | BaseException]:
    sem = asyncio.Semaphore(max(1, limit))

    async def one(op: Op[T]) -> T | BaseException:
        async with sem:
            try:
                return await run_async(op)
            except Exception as exc:  # noqa: BLE001
                return exc

    return list(await asyncio.gather(*(one(op) for op in ops)))

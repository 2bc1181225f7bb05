"""Write each operation once, run it sync or async.

An operation is a generator that *yields* the calls with side effects it needs
(``yield call(store, "search", ...)``) and gets their results back. ``run_sync``
performs them directly; ``run_async`` awaits the component's ``a<method>`` twin when
it has one (network clients) and otherwise runs the blocking call in a worker thread,
so the event loop is never blocked and the logic is never duplicated.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from typing import Any, Generator, TypeVar

T = TypeVar("T")
Op = Generator["Call", Any, T]


@dataclass
class Call:
    target: Any
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def call(target: Any, method: str, *args: Any, **kwargs: Any) -> Call:
    return Call(target, method, args, kwargs)


def run_sync(op: Op[T]) -> T:
    try:
        step = next(op)
        while True:
            try:
                result = getattr(step.target, step.method)(*step.args, **step.kwargs)
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
                native = getattr(step.target, "a" + step.method, None)
                if native is not None and inspect.iscoroutinefunction(native):
                    result = await native(*step.args, **step.kwargs)
                else:
                    fn = getattr(step.target, step.method)
                    result = await asyncio.to_thread(fn, *step.args, **step.kwargs)
            except BaseException as exc:
                step = op.throw(exc)
            else:
                step = op.send(result)
    except StopIteration as stop:
        return stop.value


def run_many_sync(ops: list[Op[T]], workers: int) -> list[T | BaseException]:
    """Run independent operations on a bounded thread pool; errors are returned, not raised."""
    from concurrent.futures import ThreadPoolExecutor

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

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

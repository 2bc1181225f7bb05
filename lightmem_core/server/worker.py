"""Extraction off the request path: one background run per stream at a time.

``add`` journals turns and returns; the write path (compression, segmentation, the LLM,
embedding, the store) runs here. A stream (user, agent) is worked by at most one run at
once, so its turns keep their order; a run started while another is going on is
folded into a follow-up run, so every turn journaled before a ``wait`` is processed
when the wait returns. Reads never wait for any of it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from ..types import AddResult

log = logging.getLogger(__name__)

Stream = tuple[str, Optional[str]]


@dataclass
class _State:
    task: Optional[asyncio.Task] = None
    again: bool = False
    done: list[asyncio.Future] = field(default_factory=list)  # waiters released when the run after them ends
    result: AddResult = field(default_factory=AddResult)


class ExtractionWorker:
    def __init__(self, memory: Any) -> None:
        self.memory = memory
        self._streams: dict[Stream, _State] = {}
        self._closing = False
        self.runs = 0
        self.failures = 0

    def submit(self, user_id: str, agent_id: Optional[str]) -> asyncio.Future:
        """Schedule the stream's write path; the future resolves with what the run stored."""
        loop = asyncio.get_running_loop()
        state = self._streams.setdefault((user_id, agent_id), _State())
        waiter: asyncio.Future = loop.create_future()
        if self._closing:
            waiter.set_result(AddResult())
            return waiter
        if state.task is not None and not state.task.done():
            state.again = True  # the turns of this call may have been read already: one more run
            state.done.append(waiter)
        else:
            state.done.append(waiter)
            state.task = loop.create_task(self._run((user_id, agent_id), state))
        return waiter

    async def _run(self, stream: Stream, state: _State) -> None:
        while True:
            waiters, state.done = state.done, []
            state.again = False
            try:
                result = await self.memory.aextract_pending(user_id=stream[0], agent_id=stream[1])
                self.runs += 1
                if result.error:
                    log.warning("extraction of %s left turns pending: %s", stream, result.error)
            except Exception as exc:  # noqa: BLE001 - the turns stay journaled; the next add or flush retries
                self.failures += 1
                log.exception("extraction of %s failed", stream)
                result = AddResult(error=f"{type(exc).__name__}: {exc}")
            for w in waiters:
                if not w.done():
                    w.set_result(result)
            if not state.again or self._closing:
                break
        for w in state.done:  # closing: nothing more runs
            if not w.done():
                w.set_result(AddResult())
        state.done = []

    def schedule_pending(self) -> None:
        """After a restart: every stream with journaled, unextracted turns."""
        for scope in self.memory.pending_streams():
            self.submit(scope.user_id, scope.agent_id)

    async def idle(self, timeout: Optional[float] = None) -> None:
        tasks = [s.task for s in self._streams.values() if s.task is not None and not s.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self, timeout: float = 30.0) -> None:
        """Let running extractions finish (they end in a committed change either way)."""
        self._closing = True
        await self.idle(timeout)

"""Memory tools for tool-calling agents: save, search, update and delete memories.

``create_memory_tools(memory, scope)`` returns ``StructuredTool``s with pydantic
argument schemas. With a fixed ``scope`` every call acts on it; with ``scope=None``
each call takes its scope from the agent run (LangGraph injects a ``ToolRuntime``:
its context, then ``config["configurable"]``, with the thread id as session), so one
tool set serves every user of an agent. Searches, updates and deletes act on the
user's memories across sessions; saves are stamped with the current session.

Errors the model can fix (unknown memory id, empty text) come back as the tool's
answer instead of aborting the run.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from langchain_core.tools import StructuredTool, ToolException
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from lightmem_core import Hit, LightMemError, MemoryEntry, Scope
from lightmem_core.drive import Op, call, run_async, run_sync

from ._common import (
    ScopePolicy,
    as_scope,
    entry_metadata,
    retrieve_kwargs,
    scope_kwargs,
)

TOOL_NAMES = ("save", "search", "update", "delete")


class SaveMemoryInput(BaseModel):
    content: str = Field(
        description="The fact to remember, self-contained, e.g. 'Maya is allergic to peanuts.'",
        min_length=1,
        max_length=4000,
    )
    time_stamp: Optional[str] = Field(None, description="When it happened or was said (ISO 8601), if not now.")


class SearchMemoryInput(BaseModel):
    query: str = Field(description="What to look for, as a question or keywords.", min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50, description="How many memories to return.")


class UpdateMemoryInput(BaseModel):
    memory_id: str = Field(description="The id of the memory, as shown by the search tool.", min_length=1)
    content: str = Field(description="The corrected memory text, self-contained.", min_length=1, max_length=4000)
    reason: Optional[str] = Field(None, description="Why it changes (kept in the memory's history).")


class DeleteMemoryInput(BaseModel):
    memory_id: str = Field(description="The id of the memory, as shown by the search tool.", min_length=1)
    reason: Optional[str] = Field(None, description="Why it goes (kept in the memory's history).")


def _line(entry: MemoryEntry) -> str:
    return f"[{entry.id}] {entry.prompt_line()}"


def _hit_line(hit: Hit) -> str:
    """The memory the id names, then the turn around it: the model updates the one and
    understands by the other."""
    return _line(hit.entry) + (f"\n    in context: {hit.window}" if hit.window else "")


class _MemoryTools:
    """The operations behind the tools, each written once for sync and async."""

    def __init__(
        self,
        memory: Any,
        scope: Optional[Scope],
        policy: ScopePolicy,
        k: int,
        speaker_name: Optional[str],
        strategy: Optional[str],
        hierarchical: Optional[bool],
    ) -> None:
        self.memory = memory
        self.scope = scope
        self.policy = policy
        self.k = k
        self.speaker_name = speaker_name
        self.strategy = strategy
        self.hierarchical = hierarchical

    def write_scope(self, runtime: Optional[ToolRuntime]) -> Scope:
        if self.scope is not None:
            return self.scope
        context = getattr(runtime, "context", None)
        config = getattr(runtime, "config", None)
        return self.policy.resolve(context, config)

    def read_scope(self, runtime: Optional[ToolRuntime]) -> Scope:
        return self.policy.read_scope(self.write_scope(runtime))

    def save(
        self, runtime: Optional[ToolRuntime], content: str, time_stamp: Optional[str] = None
    ) -> Op[tuple[str, list[dict[str, Any]]]]:
        turn: dict[str, Any] = {"role": "user", "content": content}
        if self.speaker_name:
            turn["speaker_name"] = self.speaker_name
        if time_stamp:
            turn["time_stamp"] = time_stamp
        result = yield call(
            self.memory.add_memory, [turn], force_extract=True, **scope_kwargs(self.write_scope(runtime))
        )
        if result.error:
            return f"Not saved yet (kept pending, will be retried): {result.error}", []
        if not result.added:
            return "Nothing new to save (already known).", []
        lines = "\n".join(_line(e) for e in result.added)
        return f"Saved {len(result.added)} memory(ies):\n{lines}", [
            entry_metadata(e) | {"memory": e.memory} for e in result.added
        ]

    def search(
        self, runtime: Optional[ToolRuntime], query: str, k: Optional[int] = None
    ) -> Op[tuple[str, list[dict[str, Any]]]]:
        opts = retrieve_kwargs(strategy=self.strategy, hierarchical=self.hierarchical)
        hits = yield call(self.memory.retrieve, query, k or self.k, **scope_kwargs(self.read_scope(runtime)), **opts)
        if not hits:
            return "No memories found.", []
        return "\n".join(_hit_line(h) for h in hits), [
            entry_metadata(h.entry) | {"memory": h.entry.memory, "window": h.window, "score": h.score} for h in hits
        ]

    def update(
        self, runtime: Optional[ToolRuntime], memory_id: str, content: str, reason: Optional[str] = None
    ) -> Op[tuple[str, list[dict[str, Any]]]]:
        entry = yield call(
            self.memory.update,
            memory_id,
            content,
            **scope_kwargs(self.read_scope(runtime)),
            reason=reason or "updated by the agent",
        )
        return f"Updated: {_line(entry)}", [entry_metadata(entry) | {"memory": entry.memory}]

    def delete(
        self, runtime: Optional[ToolRuntime], memory_id: str, reason: Optional[str] = None
    ) -> Op[tuple[str, list[dict[str, Any]]]]:
        yield call(
            self.memory.delete,
            memory_id,
            **scope_kwargs(self.read_scope(runtime)),
            reason=reason or "deleted by the agent",
        )
        return f"Deleted memory {memory_id}.", [{"id": memory_id}]


_SPECS: dict[str, tuple[type[BaseModel], str]] = {
    "save": (
        SaveMemoryInput,
        "Save a fact about the user or the conversation to long-term memory, so it can be "
        "recalled in later conversations. Use for stable facts, preferences, plans and corrections.",
    ),
    "search": (
        SearchMemoryInput,
        "Search long-term memory (earlier conversations and saved facts). Returns one "
        "memory per line as '[id] time memory'.",
    ),
    "update": (UpdateMemoryInput, "Replace the text of a memory that is wrong or outdated (use the id from search)."),
    "delete": (DeleteMemoryInput, "Delete a memory that is wrong or that the user asked to forget (id from search)."),
}


class _MemoryTool(StructuredTool):
    """A content-and-artifact tool whose failures carry an artifact too.

    LangChain turns a handled ``ToolException`` into an error ``ToolMessage`` with no
    artifact, which consumers of ``response_format="content_and_artifact"`` (and the
    langchain-tests suite) reject; here the artifact is the error, stated once."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return _with_error_artifact(super().run(*args, **kwargs))

    async def arun(self, *args: Any, **kwargs: Any) -> Any:
        return _with_error_artifact(await super().arun(*args, **kwargs))


def _with_error_artifact(output: Any) -> Any:
    if getattr(output, "type", None) == "tool" and output.status == "error" and output.artifact is None:
        output.artifact = {"error": output.content}
    return output


def _make_tool(ops: _MemoryTools, action: str, name: str) -> StructuredTool:
    schema, description = _SPECS[action]
    op_factory: Callable[..., Op[Any]] = getattr(ops, action)

    def run(runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        try:
            return run_sync(op_factory(runtime, **kwargs))
        except LightMemError as exc:
            raise ToolException(str(exc)) from exc

    async def arun(runtime: ToolRuntime = None, **kwargs: Any) -> Any:  # type: ignore[assignment]
        try:
            return await run_async(op_factory(runtime, **kwargs))
        except LightMemError as exc:
            raise ToolException(str(exc)) from exc

    return _MemoryTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=description,
        args_schema=schema,
        response_format="content_and_artifact",
        handle_tool_error=True,
        handle_validation_error=True,
        infer_schema=False,
    )


def create_memory_tools(
    memory: Any,
    scope: Any = None,
    *,
    include: Sequence[str] = TOOL_NAMES,
    k: int = 5,
    name_prefix: str = "",
    speaker_name: Optional[str] = None,
    strategy: Optional[str] = None,
    hierarchical: Optional[bool] = None,
    session_from_thread: bool = True,
    share_across_sessions: bool = True,
) -> list[StructuredTool]:
    """Tools named ``{name_prefix}{save,search,update,delete}_memory``.

    Args:
        memory: a ``LightMemory``.
        scope: a ``Scope``, a dict with ``user_id`` (and ``agent_id``/``session_id``) or
            a bare user id; ``None`` takes it from each agent run (see module docstring).
        include: which of ``save``, ``search``, ``update``, ``delete`` to create.
        k: default number of search results.
        speaker_name: who saved facts are attributed to (default: the user role).
        strategy / hierarchical: retrieval options of the search tool.
    """
    unknown = set(include) - set(TOOL_NAMES)
    if unknown:
        raise ValueError(f"unknown memory tools {sorted(unknown)}; expected some of {list(TOOL_NAMES)}")
    policy = ScopePolicy(session_from_thread=session_from_thread, share_across_sessions=share_across_sessions)
    ops = _MemoryTools(memory, as_scope(scope), policy, k, speaker_name, strategy, hierarchical)
    return [_make_tool(ops, action, f"{name_prefix}{action}_memory") for action in TOOL_NAMES if action in include]

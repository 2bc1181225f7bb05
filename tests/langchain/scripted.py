"""A real LangChain chat model whose answers are scripted, for driving real agents offline.

It is a ``BaseChatModel`` subclass (not a mock): ``create_agent`` binds tools to it,
calls it through the normal runnable machinery and middleware, and it records every
request it receives so tests can assert what the model was actually shown.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Step = Union[str, AIMessage, Callable[[list[BaseMessage]], Union[str, AIMessage]]]


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted step (text, an AIMessage with tool calls, or a
    function of the request); ``default`` once the script is used up."""

    script: list[Any] = Field(default_factory=list)
    default: Any = "OK."
    requests: list[list[BaseMessage]] = Field(default_factory=list)
    usage: Optional[dict[str, int]] = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.requests.append(list(messages))
        step = self.script.pop(0) if self.script else self.default
        if callable(step):
            step = step(list(messages))
        message = AIMessage(content=step) if isinstance(step, str) else step.model_copy(deep=True)
        if self.usage is not None:
            message.usage_metadata = {**self.usage, "total_tokens": sum(self.usage.values())}  # type: ignore[typeddict-item]
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":
        return self

    def system_text(self, index: int = -1) -> str:
        """The system message of one recorded request ('' when there was none)."""
        request = self.requests[index]
        return request[0].text if request and request[0].type == "system" else ""


def tool_call(name: str, args: dict[str, Any], call_id: str = "call-1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])

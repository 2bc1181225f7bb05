"""LightMem as the long-term memory of a LangChain v1 agent (``create_agent``).

    python examples/langchain_agent.py [--store DIR [--fresh]]

Thread 1: Maya tells the agent a few things. Thread 2 is a new conversation (an empty
thread in the checkpointer) and the agent still knows them: ``LightMemoryMiddleware``
recalled them from LightMem for her question and added them to the system message.
Omar asking the same question in his own thread gets nothing of Maya's.

Offline by default: the embedded store, the packaged MiniLM, and a tiny scripted chat
model that answers by quoting the memory line that best matches the question (so you
can see exactly what the middleware injected). Point it at a real model on any
OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server):

    export LIGHTMEM_LLM_BASE_URL=http://localhost:11434/v1   # or OPENAI_BASE_URL
    export LIGHTMEM_LLM_MODEL=llama3.1                       # or LIGHTMEM_MODEL; default gpt-4o-mini
    export LIGHTMEM_LLM_API_KEY=...                          # or OPENAI_API_KEY
    python examples/langchain_agent.py --fresh

The same model then answers the agent and extracts LightMem's memories (through
``ChatModelLLM``, usage counted per stage). ``langchain-openai``'s ``ChatOpenAI`` is
used when installed; otherwise a minimal chat model over the core's own
OpenAI-compatible client, defined below.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from lightmem_core import LightMemory  # noqa: E402
from lightmem_langchain import ChatModelLLM, LightMemoryMiddleware  # noqa: E402

THREAD_1 = [
    "Hi! I'm Maya. I just adopted a corgi puppy called Biscuit.",
    "I work as a nurse at Brightline Health, mostly night shifts.",
    "My sister Priya lives in Lisbon and I'm visiting her in July.",
]
QUESTIONS = ["What breed is my puppy?", "Where does my sister live?"]
_WORD = re.compile(r"[a-z0-9]+")
_LINE = re.compile(r"^.*?\b(user|assistant): ")
_STOP = {"what", "is", "my", "the", "a", "i", "do", "does", "where", "who", "and", "in", "of", "to"}


@dataclass
class Context:
    """The run's scope: LightMemoryMiddleware reads user_id (and agent_id / session_id) from here."""

    user_id: str


class MemoryQuotingChatModel(BaseChatModel):
    """Offline stand-in for an LLM: answers with the injected memory line that shares the
    most words with the question, or acknowledges a statement."""

    @property
    def _llm_type(self) -> str:
        return "memory-quoting"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        question = messages[-1].text
        system = messages[0].text if messages[0].type == "system" else ""
        memories = [line[2:] for line in system.splitlines() if line.startswith("- ")]
        words = set(_WORD.findall(question.lower())) - _STOP
        best = max(memories, key=lambda m: len(words & set(_WORD.findall(m.lower()))), default=None)
        if not question.rstrip().endswith("?"):
            answer = "Thanks, I'll keep that in mind."
        elif best and words & set(_WORD.findall(best.lower())):
            said = _LINE.sub("", best)  # drop the "2025-04-06 10:05 Sun user:" prefix of the memory line
            answer = f'You told me earlier: "{said}"'
        else:
            answer = "I don't know that yet."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])


class CoreOpenAIChat(BaseChatModel):
    """A minimal chat model over LightMem's own OpenAI-compatible client (used when
    langchain-openai is not installed)."""

    client: Any

    @property
    def _llm_type(self) -> str:
        return "lightmem-openai-compatible"

    def _generate(
        self, messages: list[BaseMessage], stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        wire = [{"role": roles.get(m.type, "user"), "content": m.text} for m in messages]
        done = self.client.complete(wire, stage="agent")
        usage = {
            "input_tokens": done.usage.prompt_tokens,
            "output_tokens": done.usage.completion_tokens,
            "total_tokens": done.usage.total_tokens,
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(done.text, usage_metadata=usage))])


def endpoint_model() -> Optional[BaseChatModel]:
    """A chat model on the configured OpenAI-compatible endpoint, or None when none is configured."""
    base_url = os.environ.get("LIGHTMEM_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get("LIGHTMEM_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if not base_url and not api_key:
        return None
    model = os.environ.get("LIGHTMEM_LLM_MODEL") or os.environ.get("LIGHTMEM_MODEL") or "gpt-4o-mini"
    try:
        from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

        return ChatOpenAI(model=model, base_url=base_url, api_key=api_key or "none", temperature=0)
    except ImportError:
        from lightmem_core import LLMConfig, OpenAICompatibleLLM

        return CoreOpenAIChat(
            client=OpenAICompatibleLLM(
                LLMConfig(model=model, base_url=base_url, api_key=api_key or "none", temperature=0)
            )
        )


def ask(agent: Any, text: str, *, user: str, thread: str) -> str:
    result = agent.invoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}, context=Context(user_id=user)
    )
    answer = result["messages"][-1].text
    print(f"  [{user} / {thread}] {text}\n      -> {answer}")
    return answer


def run(store: str, *, embedder: Any = None) -> dict[str, str]:
    """The whole walk-through on one store; returns the answers (the example's test checks them)."""
    real = endpoint_model()
    chat_model = real or MemoryQuotingChatModel()
    print(f"chat model: {type(chat_model).__name__}" + ("" if real else " (offline, scripted)"))
    # With a real model it also extracts the memories (usage counted per stage); offline, extraction is extractive.
    memory = LightMemory(
        {"store": {"path": store}, "messages_use": "user_only"},  # what the user says becomes memory
        llm=ChatModelLLM(real) if real else None,
        embedder=embedder,
    )
    middleware = LightMemoryMiddleware(memory, k=4)
    agent = create_agent(
        chat_model,
        tools=[],
        system_prompt="You are a warm, concise personal assistant.",
        middleware=[middleware],
        context_schema=Context,
        checkpointer=InMemorySaver(),
    )
    answers: dict[str, str] = {}
    try:
        print("\nThread 1 (Maya tells the agent about herself)")
        for text in THREAD_1:
            ask(agent, text, user="maya", thread="maya-1")
        # With an LLM, saved turns wait in LightMem's buffer until enough collect for one
        # extraction call; flush() extracts now so thread 2 can recall them.
        memory.flush(user_id="maya")

        print("\nThread 2 (a new conversation, same user)")
        for q in QUESTIONS:
            answers[q] = ask(agent, q, user="maya", thread="maya-2")

        print("\nAnother user, same question")
        answers["omar"] = ask(agent, QUESTIONS[0], user="omar", thread="omar-1")

        print("\nWhat LightMem saved from thread 1 (time, speaker: memory, source turn ids = LangChain message ids):")
        for e in memory.get_all(user_id="maya", session_id="maya-1"):
            print(f"  {e.prompt_line()}  sources={e.source_ids}")
        stats = memory.get_token_statistics()["total"]
        print(f"\nmemory-manager LLM calls: {stats['calls']}, tokens: {stats.get('total_tokens', 0)}")
        print(f"store: {store}")
    finally:
        memory.close()
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store directory (default: a temporary one)")
    parser.add_argument("--fresh", action="store_true", help="delete the store first")
    args = parser.parse_args()
    store = args.store or tempfile.mkdtemp(prefix="lightmem-langchain-")
    if args.fresh:
        shutil.rmtree(store, ignore_errors=True)
    run(store)


if __name__ == "__main__":
    main()

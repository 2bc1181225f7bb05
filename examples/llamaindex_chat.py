"""LightMem as the long-term memory of a LlamaIndex chat engine.

    python examples/llamaindex_chat.py [--store DIR [--fresh]]

Session 1 tells the assistant a few things; session 2 is a new chat (empty recent
history) that still knows them, because ``LightMemMemory`` recalls them from the store
and puts them in the prompt. Another user asking the same questions gets nothing.
Finally the memories are queried through a ``RetrieverQueryEngine`` with their
provenance (time, speaker, source turn ids).

Offline by default: the embedded store, the packaged MiniLM, and a tiny scripted LLM
that answers by quoting the best-matching line of its prompt (so you can see what
the memory put there). Point it at a real model with an OpenAI-compatible endpoint:

    export LIGHTMEM_LLM_BASE_URL=http://localhost:11434/v1   # Ollama, vLLM, llama.cpp, OpenAI...
    export LIGHTMEM_LLM_MODEL=llama3.1                       # default gpt-4o-mini
    export LIGHTMEM_LLM_API_KEY=...                          # or OPENAI_API_KEY
    python examples/llamaindex_chat.py --fresh

The same LLM then answers the chat and extracts LightMem's memories (through
``LlamaIndexLLM``, usage counted per stage). ``llama-index-llms-openai-like`` is used
when installed; otherwise a minimal OpenAI-compatible LlamaIndex LLM defined below.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from typing import Any, Mapping, Optional, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_index.core.base.llms.types import (  # noqa: E402
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.chat_engine import SimpleChatEngine  # noqa: E402
from llama_index.core.llms import LLM  # noqa: E402
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback  # noqa: E402
from llama_index.core.llms.custom import CustomLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402

from lightmem_core import LightMemory  # noqa: E402
from lightmem_llamaindex import LightMemMemory, LightMemRetriever, create_lightmemory  # noqa: E402

SESSION_1 = [
    "Hi! I'm Maya. I just adopted a corgi puppy called Biscuit.",
    "I work as a nurse at Brightline Health, mostly night shifts.",
    "My sister Priya lives in Lisbon and I'm visiting her in July.",
]
QUESTIONS = [
    "What did I name my corgi?",
    "Where does my sister live?",
    "Where do I work?",
]
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {
    "the",
    "a",
    "an",
    "is",
    "my",
    "i",
    "do",
    "does",
    "what",
    "where",
    "who",
    "are",
    "to",
    "of",
    "in",
    "and",
    "you",
    "me",
    "it",
    "at",
    "called",
    "as",
    "for",
    "on",
    "s",
    "did",
}


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class QuotingLLM(CustomLLM):
    """Offline stand-in for a chat model: quotes the prompt line that best matches the question.

    It knows nothing itself, so whatever it answers came from its prompt, i.e. from memory.
    """

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="quoting-offline")

    def _answer(self, question: str, context: str) -> str:
        want = _words(question)
        best, score = "", 0
        for line in context.splitlines():
            line = line.strip().lstrip("- ")
            overlap = len(want & _words(line))
            if line and not line.endswith("?") and overlap > score:  # a question answers nothing
                best, score = line, overlap
        return f"From memory: {best}" if best else "Noted."

    def _reply(self, messages: Sequence[ChatMessage]) -> str:
        users = [m.content or "" for m in messages if m.role == MessageRole.USER]
        last = users[-1] if users else ""
        if "Query:" in last:  # a query engine's prompt: the context comes before the query
            context, question = last.rsplit("Query:", 1)
            return self._answer(question.split("Answer:", 1)[0].strip(), context)
        if not last.rstrip().endswith("?"):
            return "Noted."
        return self._answer(last, "\n".join(m.content or "" for m in messages if m.role == MessageRole.SYSTEM))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self._reply(messages)))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._reply([ChatMessage(role=MessageRole.USER, content=prompt)]))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt).text
        yield CompletionResponse(text=text, delta=text)


class OpenAICompatibleLLM(CustomLLM):
    """A minimal LlamaIndex LLM for any ``/v1/chat/completions`` endpoint (used when
    ``llama-index-llms-openai-like`` is not installed). ``raw`` is the OpenAI response,
    so ``LlamaIndexLLM`` reads the server's token usage from it."""

    model: str = "gpt-4o-mini"
    api_base: Optional[str] = None
    api_key: str = "not-needed"
    temperature: float = 0.0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name=self.model)

    def _client(self, asynchronous: bool = False) -> Any:
        import openai

        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(base_url=self.api_base, api_key=self.api_key)

    def _request(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [{"role": m.role.value, "content": m.content or ""} for m in messages],
            **kwargs,
        }

    @staticmethod
    def _response(raw: Any) -> ChatResponse:
        content = raw.choices[0].message.content or ""
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=content), raw=raw)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._response(self._client().chat.completions.create(**self._request(messages, kwargs)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        client = self._client(asynchronous=True)
        try:
            return self._response(await client.chat.completions.create(**self._request(messages, kwargs)))
        finally:
            await client.close()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        r = self.chat([ChatMessage(role=MessageRole.USER, content=prompt)], **kwargs)
        return CompletionResponse(text=r.message.content or "", raw=r.raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        r = self.complete(prompt, **kwargs)
        yield CompletionResponse(text=r.text, delta=r.text, raw=r.raw)


def build_llm(env: Optional[Mapping[str, str]] = None) -> Optional[LLM]:
    """The endpoint's LLM when the environment names one, else None (offline)."""
    env = os.environ if env is None else env
    base_url = env.get("LIGHTMEM_LLM_BASE_URL")
    api_key = env.get("LIGHTMEM_LLM_API_KEY") or env.get("OPENAI_API_KEY")
    if not base_url and not api_key:
        return None
    model = env.get("LIGHTMEM_LLM_MODEL", "gpt-4o-mini")
    try:
        from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-not-found]

        return OpenAILike(
            model=model,
            api_base=base_url or "https://api.openai.com/v1",
            api_key=api_key or "not-needed",
            is_chat_model=True,
            context_window=32768,
        )
    except ImportError:
        return OpenAICompatibleLLM(model=model, api_base=base_url, api_key=api_key or "not-needed")


def run(store: str, llm: Optional[LLM] = None, *, embedder: Any = None, out: Any = print) -> dict[str, Any]:
    """Both sessions, the other user and the query engine; returns what was answered."""
    online = llm is not None
    chat_llm = llm if online else QuotingLLM()
    # With an endpoint the same LLM extracts memories; offline, LightMem's extractive path does.
    # Only what the user says becomes a memory; the assistant's turns are kept as context.
    config = {"store": {"path": store}, "messages_use": "user_only"}
    lightmem: LightMemory = create_lightmemory(
        config, llm=llm if online else None, **({"embedder": embedder} if embedder is not None else {})
    )
    answers: dict[str, Any] = {"session_2": [], "other_user": []}
    try:
        out(f"-- session 1 (user maya), store {os.path.abspath(store)}")
        s1 = LightMemMemory.from_defaults(lightmem, user_id="maya", session_id="session-1")
        engine = SimpleChatEngine.from_defaults(llm=chat_llm, memory=s1)
        for text in SESSION_1:
            out(f"maya> {text}\nbot > {engine.chat(text)}")
        s1.flush()  # an LLM memory manager batches turns; extract the rest as the session ends

        out("-- session 2 (user maya): a new chat, empty recent history")
        s2 = LightMemMemory.from_defaults(lightmem, user_id="maya", session_id="session-2")
        engine = SimpleChatEngine.from_defaults(llm=chat_llm, memory=s2)
        for q in QUESTIONS:
            answer = str(engine.chat(q))
            answers["session_2"].append(answer)
            out(f"maya> {q}\nbot > {answer}")
            for hit in s2.last_hits[:2]:
                out(f"      recalled: {hit}")

        out("-- user sam asks the same (nothing of maya's is visible)")
        other = SimpleChatEngine.from_defaults(
            llm=chat_llm, memory=LightMemMemory.from_defaults(lightmem, user_id="sam", session_id="sam-1")
        )
        for q in QUESTIONS[:1]:
            answer = str(other.chat(q))
            answers["other_user"].append(answer)
            out(f"sam > {q}\nbot > {answer}")

        out("-- the memories through a RetrieverQueryEngine")
        query_engine = RetrieverQueryEngine.from_args(
            LightMemRetriever(lightmem, user_id="maya", limit=3), llm=chat_llm
        )
        response = query_engine.query("Which city does Maya's sister Priya live in?")
        answers["query"] = str(response)
        out(f"answer: {response}")
        for n in response.source_nodes:
            md = n.node.metadata
            out(
                f"  [{n.score:.3f}] {n.node.text!r} time={md['time_stamp']} speaker={md['speaker']} "
                f"sources={md['source_ids']}"
            )
        answers["sources"] = [n.node.metadata for n in response.source_nodes]
        if online:
            answers["usage"] = lightmem.get_token_statistics()
            out(f"memory-manager LLM usage: {answers['usage']}")
    finally:
        lightmem.close()
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="store directory to keep (default: a temporary one)")
    parser.add_argument("--fresh", action="store_true", help="delete the --store directory first")
    args = parser.parse_args()
    llm = build_llm()
    print(f"chat LLM: {type(llm).__name__ if llm else 'offline QuotingLLM'}")
    if args.store:
        if args.fresh:
            shutil.rmtree(args.store, ignore_errors=True)
        run(args.store, llm)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(tmp, llm)


if __name__ == "__main__":
    main()

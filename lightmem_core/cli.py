"""``lightmem``: load, inspect and fix memories from the shell.

    lightmem --path ./memories ingest chat.json --user maya
    lightmem --path ./memories search "where does Maya work?" --user maya
    lightmem --path ./memories show <id> --user maya
    lightmem --path ./memories export backup.jsonl && lightmem --path ./copy import backup.jsonl

The store is configured like ``LightMemory.from_config`` (``--config`` / ``LIGHTMEM_CONFIG``,
``LIGHTMEM_CONFIG_JSON``, ``--path`` / ``LIGHTMEM_PATH``; see ``configfile``). Output is
for people by default; ``--json`` prints JSON for scripts. Errors go to stderr with the
offending field; the exit code is 2 for bad input, 1 for other failures.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional, TypeVar, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import mcp as _mcp
from . import timeparse
from .configfile import ENV_CONFIG_FILE, ENV_STORE_PATH, load_config
from .errors import InvalidInputError, LightMemError
from .types import MemoryEntry, Message, is_blank

if TYPE_CHECKING:
    from .memory import LightMemory

app = typer.Typer(
    name="lightmem",
    help="LightMem long-term memory: load, inspect and fix memories; serve them over MCP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    """What the global options chose; the memory is opened on first use and closed at exit.

    ``embedder`` / ``llm`` may be handed in through Click's ``obj`` (``CliRunner.invoke(app,
    args, obj={"embedder": ...})``) to reuse an already loaded model."""

    path: Optional[str] = None
    config_file: Optional[str] = None
    embedder: Any = None
    llm: Any = None
    memory: Any = None
    url: Optional[str] = None
    api_key: Optional[str] = None
    json: bool = False

    def open(self) -> Any:
        """The memory: a ``RemoteMemory`` with ``--url``, else the local store (opened once)."""
        if self.memory is None:
            if self.url:
                from .remote import RemoteMemory

                self.memory = RemoteMemory(self.url, api_key=self.api_key)
                return self.memory
            from .memory import LightMemory

            components = {k: v for k, v in (("embedder", self.embedder), ("llm", self.llm)) if v is not None}
            self.memory = LightMemory.from_config(self.config(), **components)
        return self.memory

    def config(self) -> Any:
        return load_config(self.config_file, store_path=self.path)

    def keys(self) -> Any:
        from .config import MemoryConfig
        from .server.keys import KeyStore, keys_path

        return KeyStore(keys_path(MemoryConfig.from_dict(self.config()).store.path))

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
            self.memory = None


def _state(ctx: typer.Context) -> _State:
    return ctx.ensure_object(_State)


@app.callback()
def _main(
    ctx: typer.Context,
    path: Annotated[
        Optional[str],
        typer.Option(
            "--path", "-p", envvar=ENV_STORE_PATH, help="Store directory (overrides the config's store.path)."
        ),
    ] = None,
    config: Annotated[
        Optional[str],
        typer.Option("--config", "-c", envvar=ENV_CONFIG_FILE, help="Config file: JSON, TOML or YAML, LightMem keys."),
    ] = None,
    url: Annotated[
        Optional[str],
        typer.Option(
            "--url",
            envvar="LIGHTMEM_URL",
            help="Use the memory of a running 'lightmem serve' instead of a local store.",
        ),
    ] = None,
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", envvar="LIGHTMEM_API_KEY", help="The key for --url.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output, for every command.")] = False,
) -> None:
    injected = ctx.obj if isinstance(ctx.obj, dict) else {}
    state = _State(
        path=path,
        config_file=config,
        embedder=injected.get("embedder"),
        llm=injected.get("llm"),
        url=url,
        api_key=api_key,
        json=as_json,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


def _command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``app.command`` that reports the library's errors as one line on stderr."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            ctx = kw.get("ctx")
            if "as_json" in kw and ctx is not None and isinstance(getattr(ctx, "obj", None), _State) and ctx.obj.json:
                kw["as_json"] = True  # the global --json
            try:
                return fn(*a, **kw)
            except InvalidInputError as exc:
                err.print(f"[red]error:[/red] {escape(exc.field)}: {escape(exc.reason)}")
                raise typer.Exit(2) from None
            except LightMemError as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}")
                raise typer.Exit(1) from None

        app.command(*args, **kwargs)(wrapper)
        return fn

    return decorate


# --- shared options -----------------------------------------------------------------------
UserOpt = Annotated[
    Optional[str], typer.Option("--user", "-u", help="User id (default: the config's default_user_id).")
]
AgentOpt = Annotated[Optional[str], typer.Option("--agent", "-a", help="Agent id: narrows reads, stamped on writes.")]
SessionOpt = Annotated[
    Optional[str], typer.Option("--session", "-s", help="Session id: narrows reads, stamped on writes.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
FilterOpt = Annotated[
    Optional[str],
    typer.Option("--filter", "-f", help='Filters as JSON, e.g. \'{"time_stamp": {"gte": "2025-01-01"}}\'.'),
]


def _scope(user: Optional[str], agent: Optional[str], session: Optional[str]) -> dict[str, Optional[str]]:
    return {"user_id": user, "agent_id": agent, "session_id": session}


def _filters(text: Optional[str]) -> Optional[dict[str, Any]]:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError("--filter", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInputError("--filter", f"expected a JSON object, got {type(value).__name__}")
    return value


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _entry(entry: MemoryEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude={"context"})


def _table(*columns: str, title: Optional[str] = None) -> Table:
    """Ids and times never wrap (they are copied into the next command); text folds."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col in columns:
        table.add_column(col, no_wrap=col in ("#", "id", "time", "version", "event"), overflow="fold")
    return table


def _when(entry: MemoryEntry) -> str:
    return " ".join(p for p in (timeparse.format_time(entry.time_stamp), entry.weekday or "") if p)


# --- ingest -------------------------------------------------------------------------------
class InputFormat(str, Enum):
    auto = "auto"
    locomo = "locomo"
    longmemeval = "longmemeval"
    messages = "messages"


@dataclass
class _Conversation:
    """A file's turns, grouped by session, with the user the file names (if any), and
    where the file had turns with nothing in them (skipped, as ``add_memory`` skips them)."""

    sessions: list[tuple[Optional[str], list[Message]]]
    user_id: Optional[str] = None
    skipped: list[str] = field(default_factory=list)

    @property
    def turns(self) -> int:
        return sum(len(m) for _, m in self.sessions)


def _validated(
    raw: list[Any], where: Callable[[int], str], skipped: Optional[list[str]] = None
) -> list[tuple[Optional[str], Message]]:
    """Every turn checked before anything is written; errors name the turn in the file.
    Turns with empty content are left out and their places noted in ``skipped``."""
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InvalidInputError(where(i), f"expected an object, got {type(m).__name__}")
        if is_blank(m.get("content")):
            if skipped is not None:
                skipped.append(where(i))
                continue
        m = dict(m)
        session = m.pop("session_id", None)
        try:
            out.append((None if session is None else str(session), Message.model_validate(m)))
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(p) for p in e["loc"])
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            raise InvalidInputError(f"{where(i)}.{loc}" if loc else where(i), msg) from None
    return out


def _grouped(turns: list[tuple[Optional[str], Message]]) -> list[tuple[Optional[str], list[Message]]]:
    """Consecutive turns of one session go in together."""
    groups: list[tuple[Optional[str], list[Message]]] = []
    for session, msg in turns:
        if groups and groups[-1][0] == session:
            groups[-1][1].append(msg)
        else:
            groups.append((session, [msg]))
    return groups


def _locomo(data: dict[str, Any], name: str) -> _Conversation:
    """LoCoMo: ``session_N`` turn lists with ``session_N_date_time``; every speaker is a user."""
    sessions: list[tuple[Optional[str], list[Message]]] = []
    skipped: list[str] = []
    n = 1
    while f"session_{n}" in data:
        date = data.get(f"session_{n}_date_time")
        raw = []
        for t in data[f"session_{n}"]:
            text = t.get("text", "")
            if t.get("blip_caption"):
                text += f" (image: {t['blip_caption']})"
            speaker = str(t.get("speaker", "unknown"))
            raw.append(
                {
                    "id": t.get("dia_id"),
                    "role": "user",
                    "speaker_id": speaker.lower(),
                    "speaker_name": speaker,
                    "content": text,
                    "time_stamp": date,
                }
            )

        def at(i: int, n: int = n) -> str:
            return f"session_{n}[{i}]"

        turns = _validated(raw, at, skipped)
        sessions.append((f"session_{n}", [m for _, m in turns]))
        n += 1
    if not sessions:
        raise InvalidInputError("file", "a LoCoMo file needs session_1, session_2, ...")
    return _Conversation(sessions, user_id=name, skipped=skipped)


def _longmemeval(data: Any) -> list[_Conversation]:
    """LongMemEval: a list of questions, each with its own haystack of sessions; each
    haystack is one conversation, in its own scope (user id = the question id).

    Turns have no ids in the format: a turn is named ``<session id>:<position>``, so
    re-ingesting a file skips what is stored. ``has_answer`` is kept in the turn's
    metadata (evaluation reads it off the memories).
    """
    if not isinstance(data, list):
        raise InvalidInputError("file", "a LongMemEval file is a JSON list of questions")
    out = []
    for q, item in enumerate(data):
        where = f"[{q}]"
        if not isinstance(item, dict) or not isinstance(item.get("haystack_sessions"), list):
            raise InvalidInputError(f"{where}.haystack_sessions", "expected a list of sessions")
        ids, dates = item.get("haystack_session_ids") or [], item.get("haystack_dates") or []
        if len(ids) != len(item["haystack_sessions"]) or len(dates) != len(ids):
            raise InvalidInputError(f"{where}.haystack_session_ids", "needs one id and one date per session")
        skipped: list[str] = []
        sessions: list[tuple[Optional[str], list[Message]]] = []
        for s, (sid, date, turns) in enumerate(zip(ids, dates, item["haystack_sessions"])):
            if not isinstance(turns, list):
                raise InvalidInputError(f"{where}.haystack_sessions[{s}]", "expected a list of turns")
            raw = [
                {
                    "id": f"{sid}:{n}",
                    "role": t.get("role"),
                    "content": t.get("content"),
                    "time_stamp": date,
                    **({"metadata": {"has_answer": True}} if t.get("has_answer") else {}),
                }
                if isinstance(t, dict)
                else t
                for n, t in enumerate(turns)
            ]

            def at(i: int, s: int = s, where: str = where) -> str:
                return f"{where}.haystack_sessions[{s}][{i}]"

            turns_ok = _validated(raw, at, skipped)
            sessions.append((str(sid), [m for _, m in turns_ok]))
        out.append(_Conversation(sessions, user_id=str(item.get("question_id") or f"question-{q}"), skipped=skipped))
    return out


def load_conversations(path: Path, fmt: InputFormat = InputFormat.auto) -> list[_Conversation]:
    """Read a conversation file: one conversation, or one per question (LongMemEval).

    Accepted: LoCoMo (one conversation per file; the user id defaults to the file name,
    so two conversations never share turn ids); LongMemEval (a list of questions, each
    haystack in its own scope); a JSON list of messages ``[{role, content, time_stamp,
    ...}]``; a JSON object ``{"messages": [...]}`` or ``{"sessions": [{"session_id",
    "messages"}]}`` (optionally with ``user_id``); JSONL with one message per line. A
    message may carry ``session_id``. Turns with empty content are skipped and counted.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError("file", f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    skipped: list[str] = []
    if path.suffix.lower() == ".jsonl":
        raw = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"line {n}", f"not valid JSON: {exc.msg}") from None
        lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        return [_Conversation(_grouped(_validated(raw, lambda i: f"line {lines[i]}", skipped)), skipped=skipped)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError("file", f"not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if fmt == InputFormat.longmemeval or (
        fmt == InputFormat.auto
        and isinstance(data, list)
        and data
        and isinstance(data[0], dict)
        and "haystack_sessions" in data[0]
    ):
        return _longmemeval(data)
    if fmt == InputFormat.locomo or (fmt == InputFormat.auto and isinstance(data, dict) and "session_1" in data):
        if not isinstance(data, dict):
            raise InvalidInputError("file", "a LoCoMo file is a JSON object")
        return [_locomo(data, path.stem)]
    if isinstance(data, list):
        return [_Conversation(_grouped(_validated(data, lambda i: f"messages[{i}]", skipped)), skipped=skipped)]
    if isinstance(data, dict) and isinstance(data.get("sessions"), list):
        sessions = []
        for s, sess in enumerate(data["sessions"]):
            if not isinstance(sess, dict) or not isinstance(sess.get("messages"), list):
                raise InvalidInputError(f"sessions[{s}]", 'expected {"session_id": ..., "messages": [...]}')

            def at(i: int, s: int = s) -> str:
                return f"sessions[{s}].messages[{i}]"

            turns = _validated(sess["messages"], at, skipped)
            sid = sess.get("session_id")
            sessions.append((None if sid is None else str(sid), [m for _, m in turns]))
        return [_Conversation(sessions, user_id=data.get("user_id"), skipped=skipped)]
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        turns = _validated(data["messages"], lambda i: f"messages[{i}]", skipped)
        sid = data.get("session_id")
        groups = _grouped([(s if s is not None else sid, m) for s, m in turns])
        return [_Conversation(groups, user_id=data.get("user_id"), skipped=skipped)]
    raise InvalidInputError(
        "file", 'expected LoCoMo, LongMemEval, a list of messages, {"messages": [...]} or {"sessions": [...]}'
    )


@_command()
def ingest(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Conversation file: LoCoMo JSON, LongMemEval JSON, message list JSON, or JSONL.")
    ],
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    fmt: Annotated[InputFormat, typer.Option("--format", help="Input format.")] = InputFormat.auto,
    batch: Annotated[int, typer.Option(help="Turns per add_memory call.", min=1, max=10_000)] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Add a conversation file to the memory, with a progress bar.

    A LongMemEval file holds one haystack per question: each goes into its own scope
    (user id = the question id, prefixed with --user when given). Turns with empty
    content are skipped and counted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    convs = load_conversations(file, fmt)
    memory = _state(ctx).open()
    totals: Counter[str] = Counter()
    errors: list[str] = []
    skipped: list[str] = []
    users: list[str] = []
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"ingesting {file.name}", total=sum(c.turns for c in convs))
        for conv in convs:
            user_id = f"{user}-{conv.user_id}" if user and len(convs) > 1 else user or conv.user_id
            # the memory's config.default_user_id is a str (LightMemory's and RemoteMemory's alike)
            users.append(user_id or cast(str, getattr(getattr(memory, "config", None), "default_user_id", "default")))
            skipped += conv.skipped
            for sid, messages in conv.sessions:
                for start in range(0, len(messages), batch):
                    chunk = messages[start : start + batch]
                    if not chunk:
                        continue
                    r = memory.add_memory(chunk, user_id=user_id, agent_id=agent, session_id=session or sid)
                    totals.update(turns=len(r.turn_ids), duplicates=len(r.duplicate_turn_ids), entries=len(r.added))
                    skipped += [f"{sid}: {s.id or s.index}" for s in r.skipped]
                    if r.error:
                        errors.append(r.error)
                    progress.advance(task, len(chunk))
            if memory.llm is not None or _state(ctx).url:  # buffered turns wait for more; a file is complete
                progress.update(task, description="extracting the rest")
                r = memory.flush(user_id=user_id, agent_id=agent)
                totals.update(entries=len(r.added))
                if r.error:
                    errors.append(r.error)
    pending = sum(len(memory.pending(user_id=u, agent_id=agent)) for u in users)
    result = {
        "file": str(file),
        "user_id": users[0] if len(users) == 1 else None,
        "users": users,
        "turns": totals["turns"],
        "duplicates": totals["duplicates"],
        "skipped": len(skipped),
        "skipped_turns": skipped[:100],
        "entries": totals["entries"],
        "pending_turns": pending,
        "errors": errors,
        "seconds": round(time.perf_counter() - t0, 2),
        "llm": memory.get_token_statistics(),
    }
    if as_json:
        _emit_json(result)
        return
    who = f"user [bold]{escape(users[0])}[/bold]" if len(users) == 1 else f"{len(users)} users (one per question)"
    out.print(
        f"{result['turns']} turns ingested into {result['entries']} entries for {who} in {result['seconds']}s"
        + (f"; {result['duplicates']} turns were already stored" if result["duplicates"] else "")
        + (f"; {len(skipped)} empty turns skipped" if skipped else "")
        + (f"; {pending} turns pending" if pending else "")
    )
    for e in errors:
        err.print(f"[yellow]warning:[/yellow] {escape(e)}")


# --- reading ------------------------------------------------------------------------------
def _print_entries(rows: list[tuple[str, MemoryEntry, str]], windows: Optional[list[Optional[str]]] = None) -> None:
    """One memory per block: time and text, then id and details on a line of their own,
    so the id can be copied whole at any terminal width; a search hit's window below them."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", no_wrap=True, style="bold")
    grid.add_column()
    for (label, e, details), window in zip(rows, windows or [None] * len(rows)):
        grid.add_row(
            label,
            f"[cyan]{_when(e) or '-'}[/cyan]  {escape(e.memory)}\n"
            f"[dim]{e.id}{'  ' + escape(details) if details else ''}[/dim]"
            + (f"\n[dim]in context:[/dim] {escape(window)}" if window else ""),
        )
    out.print(grid)


@_command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 10,
    strategy: Annotated[Optional[str], typer.Option(help="embedding, context (BM25) or hybrid.")] = None,
    filters: FilterOpt = None,
    hierarchical: Annotated[
        Optional[bool],
        typer.Option(
            "--hierarchical/--flat", help="Summaries first, then entries of the best sessions.", show_default=False
        ),
    ] = None,
    include_superseded: Annotated[bool, typer.Option("--include-superseded")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The memories most relevant to a query, best first."""
    hits = (
        _state(ctx)
        .open()
        .retrieve(
            query,
            limit,
            _filters(filters),
            strategy=strategy,
            hierarchical=hierarchical,
            include_superseded=include_superseded,
            **_scope(user, agent, session),
        )
    )
    if as_json:
        _emit_json(
            [
                {**_entry(h.entry), "window": h.window, "score": h.score, "retrievers": h.retrievers, "rank": h.rank}
                for h in hits
            ]
        )
    elif not hits:
        out.print("no memories found")
    else:
        _print_entries(
            [(str(h.rank), h.entry, f"{'+'.join(h.retrievers)}  score {h.score:.4f}") for h in hits],
            [h.window for h in hits],
        )


@_command("list")
def list_(
    ctx: typer.Context,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    after: Annotated[
        Optional[str],
        typer.Option(
            "--after", help="Continue after this cursor (printed under the previous page): each memory exactly once."
        ),
    ] = None,
    filters: FilterOpt = None,
    summaries: Annotated[bool, typer.Option("--summaries", help="List the summaries instead of the entries.")] = False,
    include_superseded: Annotated[bool, typer.Option("--include-superseded")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The scope's memories in time order (ties by id); the next page's cursor goes to stderr."""
    flt = _filters(filters) or {}
    if summaries:
        flt["entry_type"] = "summary"
    memory = _state(ctx).open()
    where = _scope(user, agent, session)
    if offset:
        entries = memory.get_all(
            filters=flt or None, limit=limit, offset=offset, after=after, include_superseded=include_superseded, **where
        )
        next_cursor = None
    else:
        page = memory.get_page(
            filters=flt or None, limit=limit, after=after, include_superseded=include_superseded, **where
        )
        entries, next_cursor = page.entries, page.next_cursor
    if next_cursor:  # stderr, so stdout stays the listing (a JSON list with --json)
        err.print(f"next page: --after {next_cursor}", soft_wrap=True)
    if as_json:
        _emit_json([_entry(e) for e in entries])
        return
    if not entries:
        out.print("no memories")
    rows = []
    for n, e in enumerate(entries, start=offset + 1):
        details = [
            f"session {e.session_id}" if e.session_id else "",
            f"v{e.version}" if e.version > 1 else "",
            "" if e.is_current else f"superseded by {e.superseded_by}",
        ]
        rows.append((str(n), e, "  ".join(d for d in details if d)))
    _print_entries(rows)


@_command()
def show(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One memory with its history and the turns it came from."""
    memory = _state(ctx).open()
    scope = _scope(user, agent, session)
    entry = memory.get(memory_id, **scope)
    history = memory.history(memory_id, **scope)
    sources = memory.source_turns(memory_id, **scope)
    if as_json:
        _emit_json(
            {
                "entry": entry.model_dump(mode="json"),
                "history": [r.model_dump(mode="json") for r in history],
                "sources": [t.model_dump(mode="json", exclude={"seq"}) for t in sources],
            }
        )
        return
    out.print(f"[bold]{escape(entry.memory)}[/bold]")
    fields = Table.grid(padding=(0, 2))
    for key in (
        "id",
        "entry_type",
        "speaker_name",
        "time_stamp",
        "recorded_at",
        "valid_to",
        "superseded_by",
        "user_id",
        "agent_id",
        "session_id",
        "entities",
        "keywords",
        "version",
    ):
        value = getattr(entry, key)
        if value not in (None, [], ""):
            fields.add_row(f"[dim]{key}[/dim]", escape(str(getattr(value, "value", value))))
    out.print(fields)
    table = _table("version", "event", "time", "by", "text", "reason", title="history")
    for r in history:
        text = (
            r.new_memory
            if r.old_memory is None
            else (r.old_memory if r.new_memory is None else f"{r.old_memory} -> {r.new_memory}")
        )
        table.add_row(
            str(r.version),
            r.event,
            timeparse.format_time(r.created_at),
            escape(r.actor),
            escape(text or ""),
            escape(r.reason or ""),
        )
    out.print(table)
    turns = _table("id", "time", "speaker", "text", title="source turns")
    for t in sources:
        turns.add_row(escape(t.id), timeparse.format_time(t.time_stamp), escape(t.speaker), escape(t.content))
    out.print(turns if sources else "[dim]no source turns[/dim]")


# --- fixing -------------------------------------------------------------------------------
@_command()
def update(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    text: Annotated[str, typer.Argument(help="The corrected text.")],
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the history).")] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct a memory's text; the old text stays in its history."""
    entry = _state(ctx).open().update(memory_id, text, reason=reason, **_scope(user, agent, session))
    if as_json:
        _emit_json(_entry(entry))
    else:
        out.print(f"updated {entry.id} (version {entry.version}): {escape(entry.memory)}")


@_command()
def delete(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the history).")] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a memory (its history keeps a DELETE record with the text)."""
    _state(ctx).open().delete(memory_id, reason=reason, **_scope(user, agent, session))
    if as_json:
        _emit_json({"deleted": memory_id})
    else:
        out.print(f"deleted {memory_id}")


# --- accounting, export, import -------------------------------------------------------------
def _natural(key: tuple[Optional[str], ...]) -> list[Any]:
    """session_2 before session_10."""
    return [[int(p) if p.isdigit() else p for p in re.split(r"(\d+)", x or "")] for x in key]


def compute_stats(memory: "LightMemory", user_id: Optional[str] = None) -> dict[str, Any]:
    """Entries per scope and where the tokens went: what was said vs what is kept."""
    from .llm import estimate_tokens

    scopes: dict[tuple[str, Optional[str], Optional[str]], Counter[str]] = {}
    turns: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for rec in memory.export_records(user_id=user_id):
        kind = rec["kind"]
        if kind == "turn":
            turns["total"] += 1
            turns[rec["status"]] += 1
            turns["tokens"] += estimate_tokens(rec["content"])
        elif kind == "entry":
            key = (rec["user_id"], rec["agent_id"], rec["session_id"])
            c = scopes.setdefault(key, Counter())
            current = rec["valid_to"] is None and rec["superseded_by"] is None
            c["summaries" if rec["collection"] == "summaries" else ("entries" if current else "superseded")] += 1
            if rec["collection"] == "entries":
                entries["total"] += 1
                entries["current"] += current
                entries["tokens"] += estimate_tokens(rec["memory"]) if current else 0
        elif kind == "history":
            events[rec["event"]] += 1
    rows = [
        {
            "user_id": u,
            "agent_id": a,
            "session_id": s,
            "entries": c["entries"],
            "superseded": c["superseded"],
            "summaries": c["summaries"],
        }
        for (u, a, s), c in sorted(scopes.items(), key=lambda kv: _natural(kv[0]))
    ]
    return {
        "scopes": rows,
        "turns": {
            "total": turns["total"],
            "done": turns["done"],
            "pending": turns["pending"],
            "tokens": turns["tokens"],
        },
        "entries": {"total": entries["total"], "current": entries["current"], "tokens": entries["tokens"]},
        "history": dict(sorted(events.items())),
        "llm": memory.get_token_statistics(),
    }


@_command()
def stats(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="One user (default: every user).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Entries per scope, turns, history events and token accounting."""
    memory = _state(ctx).open()
    s = compute_stats(memory, user)
    if as_json:
        _emit_json(s)
        return
    table = Table(title="entries per scope", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("user", "agent", "session", "entries", "superseded", "summaries"):
        table.add_column(col, justify="right" if col in ("entries", "superseded", "summaries") else "left")
    for r in s["scopes"]:
        table.add_row(
            escape(r["user_id"]),
            escape(r["agent_id"] or ""),
            escape(r["session_id"] or ""),
            str(r["entries"]),
            str(r["superseded"]),
            str(r["summaries"]),
        )
    out.print(table)
    t, e = s["turns"], s["entries"]
    out.print(f"turns: {t['total']} ({t['pending']} pending), {t['tokens']} tokens said")
    ratio = f" ({e['tokens'] / t['tokens']:.0%} of what was said)" if t["tokens"] else ""
    out.print(f"entries: {e['current']} current of {e['total']}, {e['tokens']} tokens kept{ratio}")
    out.print("history: " + (", ".join(f"{k} {v}" for k, v in s["history"].items()) or "empty"))
    llm = s["llm"].get("total", {})
    out.print(
        f"LLM this run: {llm.get('calls', 0)} calls, {llm.get('prompt_tokens', 0)} prompt + "
        f"{llm.get('completion_tokens', 0)} completion tokens"
    )


@contextmanager
def _opened(path: str, mode: str) -> Iterator[Any]:
    if path == "-":
        yield sys.stdout if "w" in mode else sys.stdin
        return
    try:
        f = open(path, mode, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError("file", f"cannot open {path!r}: {exc.strerror or exc}") from None
    with f:
        yield f


@_command()
def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Output JSONL file, '-' for stdout.")] = "-",
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="One user (default: every user).")] = None,
) -> None:
    """Write turns, entries and history as JSONL (import restores them exactly)."""
    memory = _state(ctx).open()
    counts: Counter[str] = Counter()
    with _opened(file, "w") as f:
        for rec in memory.export_records(user_id=user):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            counts[rec["kind"]] += 1
    if file != "-":
        err.print(
            f"exported {counts['entry']} entries, {counts['history']} history records and "
            f"{counts['turn']} turns to {file}"
        )


@_command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSONL file written by 'lightmem export', '-' for stdin.")],
    as_json: JsonOpt = False,
) -> None:
    """Load an export into this store (records already present are kept)."""
    records = []
    with _opened(file, "r") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"line {n}", f"not valid JSON: {exc.msg}") from None
    counts = _state(ctx).open().import_records(records)
    if as_json:
        _emit_json(counts)
    else:
        out.print(
            f"imported {counts['entries']} entries, {counts['history']} history records and {counts['turns']} turns"
        )


@_command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Bind address; anything but loopback needs keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    token: Annotated[
        Optional[str],
        typer.Option(envvar=_mcp.ENV_TOKEN, help="One shared admin token (the single-user desktop case)."),
    ] = None,
    allow_host: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-host", help="Host names the server answers to besides loopback (its public name behind a proxy)."
        ),
    ] = None,
    allow_origin: Annotated[
        Optional[list[str]],
        typer.Option("--allow-origin", help="Browser origins allowed besides loopback, e.g. https://app.example."),
    ] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB (413 beyond).")] = 8.0,
    read_workers: Annotated[
        Optional[int],
        typer.Option(min=1, help="Threads serving reads (default: one per CPU core; more only contend for the cores)."),
    ] = None,
    transport: Annotated[
        str,
        typer.Option(
            help="'http': REST + MCP + metrics on one port; 'stdio': MCP over stdio (what desktop clients spawn)."
        ),
    ] = "http",
) -> None:
    """Serve the memory: REST API (/openapi.json), MCP at /mcp, /healthz, /readyz, /metrics."""
    state = _state(ctx)
    memory = state.open()
    if transport == "stdio":
        _mcp.serve(memory, transport="stdio")
        return
    from .server.app import ServerSettings
    from .server.app import serve as run

    err.print(f"LightMem at http://{host}:{port} (REST, /mcp, /metrics); Ctrl-C or SIGTERM stops it", soft_wrap=True)
    run(
        memory,
        keys=state.keys(),
        settings=ServerSettings(
            host=host,
            port=port,
            token=token,
            allowed_hosts=tuple(allow_host or ()),
            allowed_origins=tuple(allow_origin or ()),
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            read_workers=read_workers,
            extra_routes=_inspector_routes(),
        ),
    )
    state.memory = None  # serve closed it


def _inspector_routes() -> list[Any]:
    """The memory inspector at /ui; without Jinja2 (the server extra) the server runs without it."""
    try:
        import jinja2  # noqa: F401

        from .server import ui
    except ImportError:
        err.print("note: no inspector at /ui: it needs Jinja2 (pip install 'lightmem-agents[server]')")
        return []
    return ui.routes()


@_command("ui")
def ui_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8765,
) -> None:
    """Open the memory inspector on a local store: `serve` on loopback, with a one-time admin key."""
    import secrets
    import socket

    state = _state(ctx)
    if state.url:
        raise InvalidInputError("--url", "the inspector serves a local store; open /ui on the running server instead")
    memory = state.open()
    from .server.app import ServerSettings
    from .server.app import serve as run

    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    # this run's admin key: held by this process only, never written down, gone when it stops
    token = f"lmk_ui_{secrets.token_urlsafe(24)}"
    out.print(f"Memory inspector: http://127.0.0.1:{port}/ui/", soft_wrap=True)
    out.print(f"Log in with this one-time admin key (valid until the server stops): {token}", soft_wrap=True)
    err.print("Ctrl-C stops it", soft_wrap=True)
    run(
        memory,
        keys=state.keys(),
        settings=ServerSettings(host="127.0.0.1", port=port, token=token, extra_routes=_inspector_routes()),
    )
    state.memory = None  # serve closed it


keys_app = typer.Typer(help="API keys of a served memory: each reaches only its own scopes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextmanager
def _keystore(state: _State) -> Iterator[Any]:
    """The store's key file, closed afterwards; bad input reported as every command does."""
    store = state.keys()
    try:
        yield store
    except InvalidInputError as exc:
        err.print(f"[red]error:[/red] {escape(exc.field)}: {escape(exc.reason)}")
        raise typer.Exit(2) from None
    finally:
        store.close()


def _ids_opt(text: Optional[str]) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    users: Annotated[Optional[str], typer.Option(help="Users it reads and writes, comma-separated.")] = None,
    read_users: Annotated[
        Optional[str], typer.Option("--read-users", help="Users (shared scopes like team:apollo) it may only read.")
    ] = None,
    agents: Annotated[Optional[str], typer.Option(help="Agents it acts as (default: any).")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="It cannot write anything.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Every scope.")] = False,
    name: Annotated[Optional[str], typer.Option(help="A name, recorded as the actor of its writes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a key. It is shown this once; only a salted hash is kept."""
    state = _state(ctx)
    with _keystore(state) as store:
        key, secret = store.create(
            name=name,
            users=_ids_opt(users),
            read_users=_ids_opt(read_users),
            agents=_ids_opt(agents) or None,
            read_only=read_only,
            admin=admin,
        )
    if as_json or state.json:
        _emit_json({"id": key.id, "key": secret, **key.public()})
        return
    out.print(f"key {key.id} ({escape(key.name)}): {secret}", soft_wrap=True)
    err.print("this is the only time the key is shown; keep it in a secret store")


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every key, active and revoked (never the secrets)."""
    state = _state(ctx)
    with _keystore(state) as store:
        keys = [k.public() for k in store.list()]
    if as_json or state.json:
        _emit_json(keys)
        return
    table = _table("id", "name", "users", "read", "agents", "flags", "revoked")
    for k in keys:
        flags = " ".join(f for f, on in (("admin", k["admin"]), ("read-only", k["read_only"])) if on)
        table.add_row(
            k["id"],
            escape(k["name"]),
            escape(",".join(k["users"])),
            escape(",".join(k["read_users"])),
            escape(",".join(k["agents"] or ["any"])),
            flags,
            k["revoked_at"] or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")], as_json: JsonOpt = False
) -> None:
    """Revoke a key: a running server refuses it from its next request on."""
    state = _state(ctx)
    with _keystore(state) as store:
        key = store.revoke(key_id)
    if as_json or state.json:
        _emit_json(key.public())
    else:
        out.print(f"revoked {key.id} ({escape(key.name)})")


if __name__ == "__main__":
    app()

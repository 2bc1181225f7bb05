"""A hit cut from a longer turn shows the sentences around it (``retrieval.window``)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from ...drive import Op, call
from ...extract import entry_id
from ...types import Hit
from .base import HitStage, ReadState
from .sentence import said


class SentenceWindow(HitStage):
    name: ClassVar[str] = "sentence_window"

    def apply(self, state: ReadState) -> Op[None]:
        wanted = window_ids(state.hits, state.config.window)
        missing = [i for ids in wanted.values() for i in ids if i not in state.payloads]
        if missing:  # the neighbours of hits cut from longer turns: one lookup by id
            found = yield call(state.store.get, state.scope, missing)
            state.payloads.update((r.id, r.payload) for r in found)
        state.hits = with_windows(
            state.hits, wanted, state.payloads, include_superseded=state.request.include_superseded
        )


def window_ids(hits: Sequence[Hit], width: int) -> dict[str, list[str]]:
    """Per hit cut from a longer turn, the ids of the pieces within ``width`` of it, its
    own included, in turn order. Offline pieces are named by (user, turn, position), so
    this is an id lookup, not a filtered scan; a hit whose id is not its name (an
    imported or hand-made entry) gets no window."""
    out: dict[str, list[str]] = {}
    for h in hits:
        e = h.entry
        if not width or e.position is None or not e.source_ids:
            continue
        if entry_id(e.user_id, e.source_ids[0], e.position) != e.id:
            continue
        out[e.id] = [
            entry_id(e.user_id, e.source_ids[0], k) for k in range(max(0, e.position - width), e.position + width + 1)
        ]
    return out


def with_windows(
    hits: Sequence[Hit],
    wanted: Mapping[str, Sequence[str]],
    payloads: Mapping[str, Mapping[str, Any]],
    *,
    include_superseded: bool = False,
) -> list[Hit]:
    """Each hit in ``wanted`` with the neighbours memory still holds, in turn order.

    ``payloads`` are read from the store now, so a neighbour deleted since is absent and
    an updated one shows its new text; a superseded one shows only with
    ``include_superseded`` (a hit never shows what retrieval itself would hide).
    """
    out = []
    for h in hits:
        e = h.entry
        own = said(e.memory, {"speaker_name": e.speaker_name, "speaker_id": e.speaker_id})
        spoken = []
        for i in wanted.get(e.id, ()):
            p = payloads.get(i)
            if i == e.id:
                spoken.append(own)
            elif p is not None and (include_superseded or p.get("_current", 1)):  # the id names its turn
                spoken.append(said(str(p.get("memory") or ""), p))
        if len(spoken) > 1:  # "Caroline: " once for the whole window
            h = h.model_copy(update={"window": e.memory[: len(e.memory) - len(own)] + " ".join(spoken)})
        out.append(h)
    return out

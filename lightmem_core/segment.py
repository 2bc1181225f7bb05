"""Topic segmentation of the sensory buffer (LightMem stage 2).

Before memories are extracted, the buffered turns are cut into topic segments, so one
extraction call sees one topic. Two implementations of :class:`TopicSegmenter`:

``AttentionSegmenter`` (provider ``"attention"``, the default) - LightMem's two levels:

1. *Coarse, from attention.* The buffered turns are concatenated into one sequence
   ``[CLS] t0 [SEP] t1 [SEP] ...`` (overlapping windows of at most 512 tokens for longer
   buffers; a turn is truncated to ``max_turn_tokens`` for this pass), and one forward
   pass per window of a BERT-style encoder (the packaged all-MiniLM-L6-v2 by default;
   no per-turn model calls) gives the attention of every token. Averaged over the heads of the upper half of
   the layers and summed over token blocks, it becomes a turn-by-turn matrix
   ``M[i, j]`` = mean over the tokens of turn ``i`` of their attention mass on the
   tokens of turn ``j``. Turn ``i``'s *backward share* is the part of its attention to
   its ``context`` neighbours on either side that goes to the preceding ones::

       back(i) = sum(M[i, i-k:i]) / (sum(M[i, i-k:i]) + sum(M[i, i+1:i+1+k]))

   (``k = min(context, i, n-1-i)``, so both sides always have as many turns). Inside a
   topic a turn attends back about as much as forward (``back`` near 0.5); the first
   turn of a new topic attends forward, to the turns of its own topic. A boundary is
   proposed before turn ``i`` when ``back(i)`` is a local minimum (``radius`` turns
   each side) below ``attention_cutoff``. On LoCoMo this single score separates
   session starts from other turns with ROC-AUC ~0.89 (see ``benchmarks/segmentation.py``).
2. *Refined by similarity.* A proposed boundary is kept only if the cosine similarity
   between the mean embedding of the ``sim_window`` turns before it and of those after
   it is below ``threshold`` (``SegmenterConfig.threshold``). Where the similarity
   drops sharply - a local minimum more than ``sharp_drop`` robust standard deviations
   below the buffer's median - a boundary is added even without an attention dip
   (plain topic switches such as "By the way, I booked flights to Lisbon" hardly move
   the attention of a small encoder; they do move the embeddings). The embeddings are
   mean-pooled last hidden states: ``embeddings="separate"`` (default) encodes every
   turn on its own - exactly the all-MiniLM-L6-v2 sentence embedding - in a second,
   cheap batched call (cached across calls, so turns carried over to the next buffer
   are not encoded again); ``embeddings="shared"`` pools them from the same forward
   pass as the attention (no second call, but contextualised: their cosines run
   higher and separate topics less well - give ``threshold`` ~0.8); ``"embedder"``
   asks the :class:`~lightmem_core.embed.Embedder` given to the constructor.

``SimilaritySegmenter`` (provider ``"similarity"``) - embeddings only: a boundary where
the window similarity is a local minimum below ``threshold``; any ``Embedder`` works.

Both add a boundary wherever consecutive turns' time stamps are more than
``gap_hours`` (default 6) apart, and neither assumes who speaks when: turns are any
sequence of (speaker, text), three speakers or one speaker twice in a row alike.

Sharing the compressor's forward pass (``precomp_topic_shared``)
-----------------------------------------------------------------
* Same model, own pass: ``AttentionSegmenter.from_model(compressor.model,
  compressor.tokenizer, embedder=memory_embedder)`` (or ``create_segmenter(config,
  embedder, compressor=compressor)``) runs on the compressor's already loaded BERT
  (LLMLingua-2 is a BERT/XLM-R token classifier; any ``transformers`` model that
  returns ``attentions`` works) instead of loading MiniLM. The model is switched to
  eager attention once (needed for ``output_attentions``). Its hidden states are not
  sentence embeddings, so the refinement then uses ``embedder`` when one is given.
* Same pass: ``LLMLingua2Compressor.compress_with_attention(texts)`` returns the
  compressions AND per-window attention (``SharedPass.windows``: ``.attention``
  ``[T, T]``, ``.spans`` ``[(text index, start, end)]``, optional ``.hidden``).
  ``segmenter.segment(turns, windows=shared_pass.windows)`` (or
  :meth:`AttentionSegmenter.segment_from_attention`) segments from those tensors with
  no forward pass of its own; ``spans`` index into ``turns``, so pass the same turns
  in the same order as the compressed texts. Those windows do not overlap: a turn next
  to a window edge is scored with fewer neighbours, and a gap right between two
  windows has no attention score and is decided by the similarity rule alone.

Cost: the default encodes a turn more than once for attention (windows overlap, and
carried-over turns are encoded again) plus once for the separate embeddings;
``embeddings="shared"`` skips the second pass, at a cost in quality. bf16 autocast
(``precision="auto"`` on CPUs with native bf16) is faster than fp32 and leaves almost
every cut unchanged. The figures are in ``benchmarks/README.md`` (topic segmentation).

All scoring helpers (:func:`turn_attention`, :func:`backward_share`,
:func:`window_similarity`, :func:`local_minima`, :func:`pick_boundaries`,
:func:`time_gap_boundaries`) are plain numpy functions on matrices.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ._quiet import quiet_model_load
from .config import MINILM_ALIASES, SegmenterConfig
from .embed import bf16_supported
from .errors import ConfigError, InvalidInputError, StageNotAvailableError

log = logging.getLogger(__name__)

__all__ = [
    "AttentionSegmenter",
    "DEFAULT_GAP_HOURS",
    "Segment",
    "SimilaritySegmenter",
    "TopicSegmenter",
    "Turn",
    "TurnLike",
    "as_turns",
    "backward_share",
    "create_segmenter",
    "local_minima",
    "pick_boundaries",
    "segments_from_boundaries",
    "time_gap_boundaries",
    "turn_attention",
    "window_similarity",
]

DEFAULT_GAP_HOURS = 6.0


# --- turns in, segments out ------------------------------------------------------------


@runtime_checkable
class TurnLike(Protocol):
    """What a segmenter reads from a turn (the journal's ``TurnRow`` has all of it).

    Also accepted: objects with ``speaker_name``/``speaker_id``/``role`` instead of
    ``speaker``, mappings with the same keys (``text``/``dia_id`` too), and plain strings.
    """

    content: str
    speaker: Optional[str]
    id: Optional[str]
    time_stamp: Optional[Any]


@dataclass(frozen=True)
class Turn:
    """A turn as the segmenters see it."""

    text: str
    speaker: Optional[str] = None
    id: Optional[str] = None
    time: Optional[datetime] = None


@dataclass(frozen=True)
class Segment:
    """Consecutive turns of one topic: ``indices`` into the segmented sequence.

    Iterating a segment yields its indices, so ``[list(s) for s in segments]`` is the
    plain ``list[list[int]]`` form.
    """

    indices: tuple[int, ...]
    ids: tuple[Optional[str], ...] = ()

    @property
    def start(self) -> int:
        return self.indices[0]

    @property
    def end(self) -> int:
        """One past the last index."""
        return self.indices[-1] + 1

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


@runtime_checkable
class TopicSegmenter(Protocol):
    def segment(self, turns: Sequence[Any]) -> list[Segment]:
        """Cut ``turns`` (in order) into consecutive topic segments covering all of them."""


_TEXT_KEYS = ("compressed", "content", "text")
_SPEAKER_KEYS = ("speaker", "speaker_name", "name", "speaker_id", "role")
_ID_KEYS = ("id", "dia_id", "turn_id")
_TIME_KEYS = ("time_stamp", "timestamp", "time")


def _field(obj: Any, keys: Sequence[str]) -> Any:
    for k in keys:
        v = obj.get(k) if isinstance(obj, Mapping) else getattr(obj, k, None)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return v
    return None


def _as_time(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    from .timeparse import parse_time

    try:
        return parse_time(value)
    except ValueError:
        return None


def as_turns(turns: Sequence[Any], *, use_compressed: bool = False) -> list[Turn]:
    """Normalise turns given as objects, mappings or strings.

    The text is ``content`` (or ``text``); with ``use_compressed`` a ``compressed``
    field wins when present.
    """
    if isinstance(turns, (str, bytes)):
        raise InvalidInputError("turns", "expected a sequence of turns, got a single string")
    out: list[Turn] = []
    text_keys = _TEXT_KEYS if use_compressed else _TEXT_KEYS[1:]
    for i, t in enumerate(turns):
        if isinstance(t, Turn):
            out.append(t)
            continue
        if isinstance(t, str):
            out.append(Turn(text=t))
            continue
        text = _field(t, text_keys)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise InvalidInputError(f"turns[{i}].content", f"expected a string, got {type(text).__name__}")
        speaker = _field(t, _SPEAKER_KEYS)
        tid = _field(t, _ID_KEYS)
        out.append(
            Turn(
                text=text,
                speaker=None if speaker is None else str(speaker),
                id=None if tid is None else str(tid),
                time=_as_time(_field(t, _TIME_KEYS)),
            )
        )
    return out


def segments_from_boundaries(n: int, boundaries: Sequence[int], ids: Sequence[Optional[str]] = ()) -> list[Segment]:
    """Segments of ``range(n)`` cut before each boundary index (0 < b < n)."""
    if n == 0:
        return []
    cuts = [0, *sorted({int(b) for b in boundaries if 0 < b < n}), n]
    ids = list(ids) if ids else [None] * n
    return [Segment(tuple(range(a, b)), tuple(ids[a:b])) for a, b in zip(cuts, cuts[1:])]


# --- scoring: pure numpy -----------------------------------------------------------------


def turn_attention(attention: np.ndarray, spans: Sequence[tuple[int, int, int]], n: Optional[int] = None) -> np.ndarray:
    """Turn-level attention of ONE window.

    ``attention``: ``[T, T]`` token attention (rows = queries), already averaged over
    the heads/layers of interest. ``spans``: ``(turn, start, end)`` token ranges; a
    turn may have several. Returns ``[m, m]`` over the window's turns in order of
    first appearance: ``M[a, b]`` = mean over the tokens of turn ``a`` of the total
    attention they pay to the tokens of turn ``b``. Special tokens ([CLS], [SEP],
    padding) belong to no turn, so attention parked on them is left out.
    """
    att = np.asarray(attention, dtype=np.float64)
    T = att.shape[0]
    order: list[int] = []
    for t, _, _ in spans:
        if t not in order:
            order.append(t)
    m = len(order) if n is None else n
    pos = {t: k for k, t in enumerate(order)}
    member = np.zeros((T, m))
    for t, s, e in spans:
        s, e = max(0, int(s)), min(T, int(e))
        if e > s:
            member[s:e, pos[t]] = 1.0
    counts = member.sum(axis=0)
    mean_rows = member / np.where(counts > 0, counts, 1.0)
    M = mean_rows.T @ att @ member
    M[counts == 0, :] = np.nan
    return M


def backward_share(M: np.ndarray, context: int = 3) -> np.ndarray:
    """Per turn ``i``: the share of its attention to its ``k`` neighbours on each side
    that goes backward, ``k = min(context, i, n-1-i)``, smaller where entries of ``M``
    are unknown (NaN); NaN where ``k = 0``. Low values: the turn looks forward, not
    back - a topic start. Index ``i`` scores the gap *before* turn ``i``."""
    M = np.asarray(M, dtype=np.float64)
    n = M.shape[0]
    out = np.full(n, np.nan)
    for i in range(1, n - 1):
        k = min(context, i, n - 1 - i)
        # Unknown entries (turns that no window saw together): use fewer neighbours.
        while k > 0 and (np.isnan(M[i, i - k : i]).any() or np.isnan(M[i, i + 1 : i + 1 + k]).any()):
            k -= 1
        if k == 0:
            continue
        back = M[i, i - k : i].sum()
        total = back + M[i, i + 1 : i + 1 + k].sum()
        if total > 0:
            out[i] = back / total
    return out


def _unit(E: np.ndarray) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return E / np.where(norms > 0, norms, 1.0)


def window_similarity(embeddings: np.ndarray, window: int = 2) -> np.ndarray:
    """``s[i]`` = cosine between the mean (unit) embedding of turns ``i-window..i-1`` and
    of turns ``i..i+window-1`` (fewer at the ends); ``s[0]`` is NaN."""
    E = _unit(embeddings)
    n = E.shape[0]
    s = np.full(n, np.nan)
    for i in range(1, n):
        left = E[max(0, i - window) : i].mean(axis=0)
        right = E[i : i + window].mean(axis=0)
        ln, rn = np.linalg.norm(left), np.linalg.norm(right)
        if ln > 0 and rn > 0:
            s[i] = float(left @ right / (ln * rn))
    return s


def local_minima(scores: np.ndarray, radius: int = 2) -> list[int]:
    """Indices ``i`` whose finite score is the smallest within ``radius`` on each side
    (ties go to the first). NaNs are never minima and do not block a neighbour."""
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    out: list[int] = []
    for i in range(n):
        if not np.isfinite(s[i]):
            continue
        lo, hi = max(0, i - radius), min(n, i + radius + 1)
        nb = s[lo:hi]
        fin = np.isfinite(nb)
        if s[i] > nb[fin].min():
            continue
        # tie with an earlier neighbour: that one wins
        if any(np.isfinite(s[j]) and s[j] == s[i] for j in range(lo, i)):
            continue
        out.append(i)
    return out


def pick_boundaries(
    attention_scores: Optional[np.ndarray],
    similarity: Optional[np.ndarray],
    *,
    attention_cutoff: float = 0.35,
    threshold: float = 0.5,
    radius: int = 2,
    sharp_drop: Optional[float] = 3.0,
    n: Optional[int] = None,
) -> list[int]:
    """The two-level rule. A boundary before turn ``i`` when

    1. ``attention_scores[i]`` (:func:`backward_share`) is a local minimum within
       ``radius`` and below ``attention_cutoff``, and ``similarity[i]`` (when given) is
       below ``threshold``; or
    2. turn ``i`` has no attention score (``attention_scores=None``: the similarity-only
       rule; or an inner turn that no window of a shared pass saw with neighbours) and
       ``similarity[i]`` is a local minimum below ``threshold``; or
    3. (``sharp_drop``) ``similarity[i]`` is a local minimum more than ``sharp_drop``
       robust standard deviations (median and MAD of the buffer's similarities, at
       least 6 of them) below the buffer's median - a topic change clear enough
       without the attention level - and no boundary is already next to it.
    """
    if attention_scores is None and similarity is None:
        return []
    size = n if n is not None else len(attention_scores if attention_scores is not None else similarity)  # type: ignore[arg-type]
    a = np.full(size, np.nan) if attention_scores is None else np.asarray(attention_scores, dtype=np.float64)
    s = None if similarity is None else np.asarray(similarity, dtype=np.float64)
    out: set[int] = set()
    for i in local_minima(a, radius):
        if i <= 0 or a[i] >= attention_cutoff:
            continue
        if s is not None and np.isfinite(s[i]) and s[i] >= threshold:
            continue
        out.add(i)
    if s is None:
        return sorted(out)
    minima = [i for i in local_minima(s, radius) if i > 0]
    # Without attention, or inside the buffer where no window covered the gap (the
    # first and last turns never have a backward share: no neighbour on one side).
    fallback = range(1, size) if attention_scores is None else range(1, size - 1)
    for i in minima:
        if i in fallback and not np.isfinite(a[i]) and s[i] < threshold:
            out.add(i)
    fin = s[np.isfinite(s)]
    if sharp_drop is not None and fin.size >= 6:
        med = float(np.median(fin))
        mad = float(np.median(np.abs(fin - med))) * 1.4826
        if mad > 0:
            for i in minima:
                if (s[i] - med) / mad < -sharp_drop and not any(abs(i - b) < radius for b in out):
                    out.add(i)
    return sorted(out)


def time_gap_boundaries(times: Sequence[Optional[datetime]], hours: Optional[float] = DEFAULT_GAP_HOURS) -> list[int]:
    """Boundaries before every turn more than ``hours`` after the previous turn (both
    time stamps known). ``hours=None`` turns the rule off."""
    if hours is None:
        return []
    out = []
    for i in range(1, len(times)):
        a, b = times[i - 1], times[i]
        if a is not None and b is not None and (b - a).total_seconds() > hours * 3600:
            out.append(i)
    return out


# --- the encoder pass ------------------------------------------------------------------------


@dataclass
class _Window:
    spans: list[tuple[int, int, int]]  # (turn, start, end) in window token positions
    attention: np.ndarray  # [T, T]
    hidden: Optional[np.ndarray] = None  # [T, H]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _coerce_windows(windows: Sequence[Any]) -> list[_Window]:
    out = []
    for w in windows:
        att = _get(w, "attention")
        spans = _get(w, "spans")
        if att is None or spans is None:
            raise InvalidInputError("windows", "each window needs 'attention' [T, T] and 'spans' [(turn, start, end)]")
        att = _attention_matrix(att)
        hid = _get(w, "hidden")
        spans = [(int(t), int(s), int(e)) for t, s, e in spans]
        out.append(_Window(spans, att, None if hid is None else np.asarray(hid, dtype=np.float32)))
    return out


def _attention_matrix(att: Any, layers: Optional[Sequence[int]] = None) -> np.ndarray:
    """``[T, T]`` from a ``[T, T]`` array, ``[H, T, T]`` heads, or a per-layer sequence
    of ``[1, H, T, T]`` / ``[H, T, T]`` tensors (``layers`` picks; default upper half)."""
    if isinstance(att, (list, tuple)):
        n_layers = len(att)
        chosen = list(layers) if layers is not None else list(range(n_layers // 2, n_layers))
        mats = [_attention_matrix(att[i]) for i in chosen]
        return np.mean(mats, axis=0)
    if hasattr(att, "detach"):
        att = att.detach().float().cpu().numpy()
    a = np.asarray(att, dtype=np.float64)
    while a.ndim > 2:
        a = a.mean(axis=0) if a.shape[0] != 1 else a[0]
    return a


def _assemble(windows: Sequence[_Window], n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Global ``[n, n]`` turn attention (NaN where no window holds both turns) and the
    turn embeddings pooled from the hidden states (or None). Where windows overlap,
    each entry comes from the window in which it sits furthest from the window edges
    (most context on both sides)."""
    M = np.full((n, n), np.nan)
    best = np.full((n, n), -np.inf)
    E: Optional[np.ndarray] = None
    ebest = np.full(n, -np.inf)
    for w in windows:
        Mw = turn_attention(w.attention, w.spans)
        order: list[int] = []
        for t, _, _ in w.spans:
            if t not in order:
                order.append(t)
        idx = np.array(order, dtype=int)
        if idx.size == 0:
            continue
        lo_edge = idx - idx.min() if idx.min() > 0 else np.full(idx.size, 10**6)
        hi_edge = idx.max() - idx if idx.max() < n - 1 else np.full(idx.size, 10**6)
        cen = np.minimum(lo_edge, hi_edge).astype(float)
        C = np.minimum.outer(cen, cen)
        ix = np.ix_(idx, idx)
        upd = (C > best[ix]) & ~np.isnan(Mw)
        M[ix] = np.where(upd, Mw, M[ix])
        best[ix] = np.where(upd, C, best[ix])
        if w.hidden is not None:
            hid = np.asarray(w.hidden, dtype=np.float64)
            if E is None:
                E = np.zeros((n, hid.shape[-1]))
            T = hid.shape[0]
            for k, t in enumerate(order):
                toks = np.concatenate([np.arange(max(0, s), min(T, e)) for tt, s, e in w.spans if tt == t])
                if toks.size and cen[k] > ebest[t]:
                    E[t] = hid[toks].mean(axis=0)
                    ebest[t] = cen[k]
    return M, E


def _plan_windows(lengths: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Turn ranges ``[a, b)`` whose token ``lengths`` fit ``budget``; consecutive windows
    share ``overlap`` turns, but at most half a window (so long turns do not make the
    windows crawl forward one turn at a time), and always advance."""
    n = len(lengths)
    out: list[tuple[int, int]] = []
    a = 0
    while a < n:
        b, used = a, 0
        while b < n and used + lengths[b] <= budget:
            used += lengths[b]
            b += 1
        b = max(b, a + 1)
        out.append((a, b))
        if b >= n:
            break
        a = max(a + 1, b - min(overlap, (b - a) // 2))
    return out


_EMBED_BATCH = 16  # turns per call of the separate embedding pass (sorted by length: little padding)
_EMBED_CACHE = 1024  # turn texts whose separate embedding is kept


def _is_base_model(model: Any) -> bool:
    """A bare encoder (``last_hidden_state``) rather than one with a task head."""
    return getattr(model, "base_model", model) is model


class AttentionSegmenter:
    """Two-level topic segmentation: coarse boundaries from a BERT encoder's attention
    between turns, kept where the embedding similarity across them is low (see the
    module docstring).

    Parameters (all keyword):
        model, tokenizer: a loaded ``transformers`` encoder and its tokenizer (else the
            config's ``model_path`` or the packaged all-MiniLM-L6-v2 is loaded on first use).
        embedder: an ``Embedder`` for the similarity level (used when
            ``embeddings="embedder"``, and as the fallback when the model's hidden
            states are not sentence embeddings, i.e. after ``from_model``).
        embeddings: ``"separate"`` | ``"shared"`` | ``"embedder"`` (see module docstring).
        threshold: similarity below which a coarse boundary is kept (default: config).
        attention_cutoff: a boundary needs ``backward_share`` below this (0.5 = no preference).
        sharp_drop: also cut where the similarity falls this many robust standard
            deviations below the buffer's median, attention or not (None = off).
        context: neighbours per side in ``backward_share``.
        radius: local-minimum radius, also the shortest segment the attention level makes.
        sim_window: turns per side averaged in ``window_similarity``.
        layers: encoder layers whose attention is averaged (default: upper half).
        max_tokens: window length including special tokens (capped by the model).
        max_turn_tokens: a longer turn is truncated for the attention pass.
        gap_hours: time-gap rule (None = off).
        precision: ``"auto"`` (bf16 autocast on CPUs with native bf16: faster, attention
            equal to 3 digits; figures in ``benchmarks/README.md``), ``"bf16"`` or ``"fp32"``.
        batch_size: windows per forward call (1 is fastest on CPU: a 512-token window
            is already a large matmul, and batching pads the shorter windows).
        window_overlap: turns shared by consecutive windows (default ``2 * context``, so
            every gap has a window holding ``context`` turns on each side).
        include_speaker: prefix each turn with ``"speaker: "`` for the model.
        use_compressed: segment the ``compressed`` text of turns that carry one.
    """

    def __init__(
        self,
        config: Optional[SegmenterConfig] = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        embedder: Any = None,
        embeddings: str = "separate",
        threshold: Optional[float] = None,
        attention_cutoff: float = 0.35,
        sharp_drop: Optional[float] = 3.0,
        context: int = 3,
        radius: int = 2,
        sim_window: int = 2,
        layers: Optional[Sequence[int]] = None,
        max_tokens: int = 512,
        max_turn_tokens: int = 96,
        gap_hours: Optional[float] = DEFAULT_GAP_HOURS,
        precision: str = "auto",
        batch_size: int = 1,
        window_overlap: Optional[int] = None,
        include_speaker: bool = False,
        use_compressed: bool = False,
    ) -> None:
        self.config = config or SegmenterConfig()
        if embeddings not in ("separate", "shared", "embedder"):
            raise ConfigError(
                "segmenter.embeddings", f"expected 'separate', 'shared' or 'embedder', got {embeddings!r}"
            )
        if embeddings == "embedder" and embedder is None:
            raise ConfigError("segmenter.embeddings", "'embedder' needs an embedder")
        if precision not in ("auto", "bf16", "fp32"):
            raise ConfigError("segmenter.precision", f"expected 'auto', 'bf16' or 'fp32', got {precision!r}")
        if context < 1 or radius < 1 or sim_window < 1 or batch_size < 1:
            raise ConfigError("segmenter", "context, radius, sim_window and batch_size must be >= 1")
        if max_turn_tokens < 1 or max_tokens < 8:
            raise ConfigError("segmenter.max_tokens", "too small")
        self.embedder = embedder
        self.embeddings = embeddings
        self.threshold = float(self.config.threshold if threshold is None else threshold)
        self.attention_cutoff = float(attention_cutoff)
        self.sharp_drop = sharp_drop
        self.context = int(context)
        self.radius = int(radius)
        self.sim_window = int(sim_window)
        self.layers = None if layers is None else [int(x) for x in layers]
        self.max_tokens = int(max_tokens)
        self.max_turn_tokens = int(max_turn_tokens)
        self.gap_hours = gap_hours
        self.precision = precision
        self.batch_size = int(batch_size)
        self.window_overlap = 2 * self.context if window_overlap is None else int(window_overlap)
        self.include_speaker = include_speaker
        self.use_compressed = use_compressed
        self._model = model
        self._tokenizer = tokenizer
        #: True when the model's pooled hidden states are sentence embeddings (MiniLM).
        self._sentence_model = model is None
        self._lock = threading.Lock()
        self._emb_cache: dict[str, np.ndarray] = {}
        #: Work done so far: segment calls, turns seen, tokens through the attention
        #: pass (windows overlap) and through the separate embedding pass.
        self.stats = {"calls": 0, "turns": 0, "attention_tokens": 0, "embedding_tokens": 0}
        if model is not None:
            self._prepare(model)

    # -- construction --

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, embedder: Any = None, **kwargs: Any) -> "AttentionSegmenter":
        """Reuse an already loaded encoder - e.g. the compressor's LLMLingua-2 token
        classifier (``compressor.model``, ``compressor.tokenizer``) - instead of loading
        MiniLM. Its hidden states are not sentence embeddings, so the similarity level
        uses ``embedder`` when one is given (``embeddings="embedder"``), else the pooled
        hidden states of a separate pass. Pass ``sentence_model=True`` when the model IS
        a sentence encoder (e.g. an already loaded MiniLM) to use its pooled states."""
        sentence_model = bool(kwargs.pop("sentence_model", False))
        if embedder is not None and not sentence_model:
            kwargs.setdefault("embeddings", "embedder")
        seg = cls(model=model, tokenizer=tokenizer, embedder=embedder, **kwargs)
        seg._sentence_model = sentence_model
        return seg

    def _prepare(self, model: Any) -> None:
        impl = getattr(getattr(model, "config", None), "_attn_implementation", "eager")
        if impl not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")  # sdpa/flash return no attention weights
        if getattr(model, "training", False):
            model.eval()

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from transformers import AutoModel, AutoTokenizer
                    except ImportError as exc:  # pragma: no cover - a core dependency via sentence-transformers
                        raise StageNotAvailableError("the attention segmenter needs transformers") from exc
                    from .embed import packaged_minilm_path

                    path = self.config.model_path
                    if path in MINILM_ALIASES:
                        path = packaged_minilm_path()
                    log.info("loading segmenter encoder from %s", path)
                    try:
                        # local only: a segmenter never downloads weights
                        with quiet_model_load():
                            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                            model = AutoModel.from_pretrained(
                                path, attn_implementation="eager", local_files_only=True
                            ).eval()
                    except (OSError, ValueError) as exc:
                        raise ConfigError("segmenter.model_path", f"cannot load {path!r} offline: {exc}") from None
                    self._tokenizer = tok
                    self._model = model
        return self._model, self._tokenizer

    # -- public API --

    def segment(
        self, turns: Sequence[Any], *, windows: Optional[Sequence[Any]] = None, embeddings: Optional[np.ndarray] = None
    ) -> list[Segment]:
        """Segments of ``turns``. ``windows`` (e.g. ``SharedPass.windows`` of the
        LLMLingua-2 compressor, spans indexing into ``turns``) replaces the forward pass;
        ``embeddings`` (``[n, d]``) replaces the similarity level's embeddings."""
        ts = as_turns(turns, use_compressed=self.use_compressed)
        return segments_from_boundaries(
            len(ts), self.boundaries(ts, windows=windows, embeddings=embeddings), [t.id for t in ts]
        )

    def boundaries(
        self, turns: Sequence[Any], *, windows: Optional[Sequence[Any]] = None, embeddings: Optional[np.ndarray] = None
    ) -> list[int]:
        """Indices ``i`` with a boundary before turn ``i`` (sorted, ``0 < i < n``)."""
        ts = as_turns(turns, use_compressed=self.use_compressed)
        n = len(ts)
        if n < 2:
            return []
        self.stats["calls"] += 1
        self.stats["turns"] += n
        if windows is None:
            wins = self._encode(ts)
        else:
            wins = _coerce_windows(windows)
        M, pooled = _assemble(wins, n)
        E = embeddings
        if E is None and (self.threshold <= 1.0 or self.sharp_drop is not None):
            E = self._embeddings(ts, pooled)
        return self._decide(ts, M, E)

    def segment_from_attention(
        self,
        turn_token_spans: Sequence[tuple[int, int]],
        attentions: Any,
        embeddings: Optional[np.ndarray] = None,
        *,
        hidden_states: Optional[np.ndarray] = None,
        turns: Optional[Sequence[Any]] = None,
    ) -> list[Segment]:
        """Segment from tensors someone else computed over ONE window.

        ``turn_token_spans[i]`` = ``(start, end)`` token positions of turn ``i``;
        ``attentions``: ``[T, T]``, ``[H, T, T]`` or the model's per-layer tuple
        (``output_attentions=True``; the upper half of the layers is used, or
        ``layers``); ``embeddings`` ``[n, d]`` or ``hidden_states`` ``[T, H]`` (pooled per
        turn) for the similarity level; ``turns`` (optional) adds ids and the time-gap rule.
        """
        n = len(turn_token_spans)
        att = _attention_matrix(attentions, self.layers)
        spans = [(i, int(s), int(e)) for i, (s, e) in enumerate(turn_token_spans)]
        win = _Window(spans, att, None if hidden_states is None else np.asarray(hidden_states))
        M, pooled = _assemble([win], n)
        ts = as_turns(turns) if turns is not None else [Turn(text="") for _ in range(n)]
        if len(ts) != n:
            raise InvalidInputError("turns", f"{len(ts)} turns for {n} spans")
        E = embeddings if embeddings is not None else pooled
        if E is None and self.embedder is not None and turns is not None:
            E = np.asarray(self.embedder.embed([t.text for t in ts]))
        return segments_from_boundaries(n, self._decide(ts, M, E), [t.id for t in ts])

    def scores(self, turns: Sequence[Any]) -> dict[str, np.ndarray]:
        """The intermediate curves (for inspection and benchmarks): ``attention``
        ``[n, n]``, ``backward_share`` ``[n]``, ``similarity`` ``[n]``."""
        ts = as_turns(turns, use_compressed=self.use_compressed)
        M, pooled = _assemble(self._encode(ts), len(ts))
        E = self._embeddings(ts, pooled)
        return {
            "attention": M,
            "backward_share": backward_share(M, self.context),
            "similarity": window_similarity(E, self.sim_window) if E is not None else np.full(len(ts), np.nan),
        }

    # -- internals --

    def _decide(self, ts: Sequence[Turn], M: np.ndarray, E: Optional[np.ndarray]) -> list[int]:
        n = len(ts)
        a = backward_share(M, self.context)
        s = window_similarity(E, self.sim_window) if E is not None and len(E) == n else None
        found = set(
            pick_boundaries(
                a,
                s,
                attention_cutoff=self.attention_cutoff,
                threshold=self.threshold,
                radius=self.radius,
                sharp_drop=self.sharp_drop,
                n=n,
            )
        )
        found.update(time_gap_boundaries([t.time for t in ts], self.gap_hours))
        return sorted(found)

    def _texts(self, ts: Sequence[Turn]) -> list[str]:
        if self.include_speaker:
            return [f"{t.speaker}: {t.text}" if t.speaker else t.text for t in ts]
        return [t.text for t in ts]

    def _autocast(self, torch: Any, model: Any) -> Any:
        import contextlib

        dev = next(model.parameters()).device.type
        want = self.precision == "bf16" or (self.precision == "auto" and (dev != "cpu" or bf16_supported()))
        if not want:
            return contextlib.nullcontext()
        return torch.autocast(dev, dtype=torch.bfloat16)

    def _special_ids(self, tok: Any) -> tuple[Optional[int], Optional[int], int]:
        cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        return cls, sep, int(pad)

    def _window_budget(self, model: Any) -> int:
        cfg = getattr(model, "config", None)
        maxpos = int(getattr(cfg, "max_position_embeddings", 512) or 512)
        if getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            maxpos -= 2  # position ids start after the padding index
        return min(self.max_tokens, maxpos)

    def _encode(self, ts: Sequence[Turn]) -> list[_Window]:
        """One batched forward pass over overlapping windows of the concatenated turns."""
        import torch

        model, tok = self._load()
        cls, sep, pad = self._special_ids(tok)
        ids = tok(self._texts(ts), add_special_tokens=False, truncation=True, max_length=self.max_turn_tokens)[
            "input_ids"
        ]
        lead = 1 if cls is not None else 0
        lengths = [len(x) + (1 if sep is not None else 0) for x in ids]
        budget = self._window_budget(model) - lead
        plan = _plan_windows(lengths, budget, overlap=self.window_overlap)
        seqs: list[list[int]] = []
        spans: list[list[tuple[int, int, int]]] = []
        for a, b in plan:
            seq = [cls] if cls is not None else []
            sp = []
            for i in range(a, b):
                start = len(seq)
                seq.extend(ids[i][: budget - 1])
                sp.append((i, start, len(seq)))
                if sep is not None:
                    seq.append(sep)
            seqs.append(seq)
            spans.append(sp)
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        layers = self.layers
        want_hidden = self.embeddings == "shared"
        out: list[_Window] = []
        dev = next(model.parameters()).device
        # Batch windows of similar length together so padding stays small.
        order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]))
        results: dict[int, tuple[np.ndarray, Optional[np.ndarray]]] = {}
        self.stats["attention_tokens"] += sum(len(x) for x in seqs)
        for c in range(0, len(order), self.batch_size):
            batch = order[c : c + self.batch_size]
            width = max(len(seqs[k]) for k in batch)
            inp = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):
                inp[r, : len(seqs[k])] = torch.tensor(seqs[k], dtype=torch.long)
                mask[r, : len(seqs[k])] = 1
            with torch.inference_mode(), self._autocast(torch, model):
                res = model(
                    input_ids=inp.to(dev),
                    attention_mask=mask.to(dev),
                    output_attentions=True,
                    output_hidden_states=want_hidden and not _is_base_model(model),
                )
            atts = getattr(res, "attentions", None)
            if not atts:
                raise StageNotAvailableError("the segmenter model returned no attentions (it needs eager attention)")
            if layers is None:
                n_layers = n_layers or len(atts)
                layers = list(range(n_layers // 2, n_layers))
            att = torch.stack([atts[i] for i in layers], dim=0).mean(dim=(0, 2), dtype=torch.float32).cpu().numpy()
            hid = None
            if want_hidden:
                last = getattr(res, "last_hidden_state", None)
                if last is None:
                    last = res.hidden_states[-1]
                hid = last.float().cpu().numpy()
            for r, k in enumerate(batch):
                L = len(seqs[k])
                results[k] = (att[r, :L, :L], None if hid is None else hid[r, :L])
        for k in range(len(plan)):
            att_k, hid_k = results[k]
            out.append(_Window(spans[k], att_k, hid_k))
        return out

    def _embeddings(self, ts: Sequence[Turn], pooled: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if self.embeddings == "embedder":
            return np.asarray(self.embedder.embed([t.text for t in ts]), dtype=np.float32)
        if self.embeddings == "shared" and pooled is not None and self._sentence_model:
            return pooled
        if not self._sentence_model and self.embedder is not None:
            return np.asarray(self.embedder.embed([t.text for t in ts]), dtype=np.float32)
        return self._separate_embeddings(ts)

    def _separate_embeddings(self, ts: Sequence[Turn]) -> np.ndarray:
        """Every turn encoded on its own and mean-pooled (CLS and SEP included): the
        sentence-transformers all-MiniLM-L6-v2 embedding, batched by length. Turns seen
        in the last calls come from a small cache: a streaming memory re-segments the
        turns it carried over from the previous buffer."""
        import torch

        model, tok = self._load()
        texts = [t.text for t in ts]
        dim = int(getattr(model.config, "hidden_size", 0) or 0)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._emb_cache.get(t)
                if hit is not None:
                    out[i] = hit
                else:
                    todo.setdefault(t, []).append(i)
        if not todo:
            return out
        uniq = sorted(todo, key=len)
        dev = next(model.parameters()).device
        fresh: dict[str, np.ndarray] = {}
        for c in range(0, len(uniq), _EMBED_BATCH):
            chunk = uniq[c : c + _EMBED_BATCH]
            enc = tok(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
            enc = {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            self.stats["embedding_tokens"] += int(enc["attention_mask"].sum())
            with torch.inference_mode(), self._autocast(torch, model):
                res = model(**enc, output_hidden_states=not _is_base_model(model))
            last = getattr(res, "last_hidden_state", None)
            if last is None:
                last = res.hidden_states[-1]
            m = enc["attention_mask"].unsqueeze(-1).float()
            pooled = ((last.float() * m).sum(1) / m.sum(1).clamp(min=1.0)).cpu().numpy()
            for t, v in zip(chunk, pooled):
                fresh[t] = v
                for i in todo[t]:
                    out[i] = v
        with self._lock:
            self._emb_cache.update(fresh)
            while len(self._emb_cache) > _EMBED_CACHE:
                self._emb_cache.pop(next(iter(self._emb_cache)))
        return out


class SimilaritySegmenter:
    """Embedding-only segmentation: a boundary where the similarity of the
    ``window`` turns before and after a gap is a local minimum (``radius``) below
    ``threshold``. Works with any ``Embedder`` (``.embed(texts) -> [n, d]``)."""

    def __init__(
        self,
        embedder: Any = None,
        config: Optional[SegmenterConfig] = None,
        *,
        threshold: Optional[float] = None,
        window: int = 2,
        radius: int = 2,
        gap_hours: Optional[float] = DEFAULT_GAP_HOURS,
        use_compressed: bool = False,
    ) -> None:
        self.config = config or SegmenterConfig(provider="similarity")
        if embedder is None:
            from .embed import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        if window < 1 or radius < 1:
            raise ConfigError("segmenter", "window and radius must be >= 1")
        self.embedder = embedder
        self.threshold = float(self.config.threshold if threshold is None else threshold)
        self.window = int(window)
        self.radius = int(radius)
        self.gap_hours = gap_hours
        self.use_compressed = use_compressed

    def boundaries(self, turns: Sequence[Any], *, embeddings: Optional[np.ndarray] = None) -> list[int]:
        ts = as_turns(turns, use_compressed=self.use_compressed)
        n = len(ts)
        if n < 2:
            return []
        E = embeddings if embeddings is not None else np.asarray(self.embedder.embed([t.text for t in ts]))
        s = window_similarity(E, self.window)
        found = set(pick_boundaries(None, s, threshold=self.threshold, radius=self.radius, sharp_drop=None, n=n))
        found.update(time_gap_boundaries([t.time for t in ts], self.gap_hours))
        return sorted(found)

    def segment(self, turns: Sequence[Any], *, embeddings: Optional[np.ndarray] = None) -> list[Segment]:
        ts = as_turns(turns, use_compressed=self.use_compressed)
        return segments_from_boundaries(len(ts), self.boundaries(ts, embeddings=embeddings), [t.id for t in ts])


def create_segmenter(
    config: Optional[SegmenterConfig] = None, embedder: Any = None, compressor: Any = None, **kwargs: Any
) -> TopicSegmenter:
    """The segmenter a ``SegmenterConfig`` asks for.

    ``compressor``: when given (``precomp_topic_shared``) and it holds a loaded
    ``.model``/``.tokenizer`` (LLMLingua-2), the attention segmenter runs on that model
    instead of loading its own, and uses ``embedder`` for the similarity level.
    Extra keyword arguments go to the segmenter's constructor. A provider added with
    ``registry.register("segmenter", ...)`` is built as ``cls(config, embedder=..., compressor=...)``,
    so a config can name it like the built-in ones.
    """
    config = config or SegmenterConfig()
    kwargs = {"gap_hours": config.gap_hours, "use_compressed": config.use_compressed, **config.options, **kwargs}
    if config.provider == "similarity":
        try:
            return SimilaritySegmenter(embedder, config, **kwargs)
        except TypeError as exc:
            raise ConfigError("segmenter.options", str(exc)) from None
    if config.provider != "attention":
        from . import registry  # an unknown name fails there with ConfigError("segmenter.provider")

        return registry.create("segmenter", config.provider, config, embedder=embedder, compressor=compressor)
    if compressor is not None:
        inner = getattr(compressor, "inner_compressor", None) or compressor
        model = getattr(inner, "model", None)
        if model is None:
            model = getattr(compressor, "model", None)
        tok = getattr(inner, "tokenizer", None)
        if tok is None:
            tok = getattr(compressor, "tokenizer", None)
        if model is not None and tok is not None and hasattr(model, "config"):
            kwargs.setdefault("embedder", embedder)
            try:
                return AttentionSegmenter.from_model(model, tok, **{"config": config, **kwargs})
            except TypeError as exc:
                raise ConfigError("segmenter.options", str(exc)) from None
        log.info("compressor %s holds no encoder; the segmenter loads its own", type(compressor).__name__)
    try:
        return AttentionSegmenter(config, embedder=embedder, **kwargs)
    except TypeError as exc:
        raise ConfigError("segmenter.options", str(exc)) from None

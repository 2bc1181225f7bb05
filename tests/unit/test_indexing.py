"""How entries are laid out for the store: context vectors and the blend."""

from __future__ import annotations

import numpy as np

from lightmem_core.drive import run_sync
from lightmem_core.extract import ExtractionBatch, ExtractiveExtractor
from lightmem_core.indexing import blend, context_lines, context_vectors
from lightmem_core.journal import TurnRow


def test_a_speakers_own_previous_turn_is_not_context() -> None:
    turns = [
        TurnRow(id="a", user_id="u", session_id="s", role="user", content="I work at Northwind Labs.", seq=0),
        TurnRow(id="b", user_id="u", session_id="s", role="user", content="We fly to Lisbon in June.", seq=1),
    ]
    entries = run_sync(ExtractiveExtractor().extract(ExtractionBatch(turns=turns, index_context="neighbors")))
    assert [e.context for e in entries] == [None, None]


def _entries():
    rows = [
        ("t1", "assistant", "What do you do for work?"),
        ("t2", "user", "I am a nurse at the city hospital. Night shifts mostly, which is hard."),
        ("t3", "assistant", "That sounds tiring."),
        ("t4", "user", "We adopted a puppy."),
    ]
    turns = [TurnRow(id=i, user_id="u", session_id="s", role=r, content=c, seq=n) for n, (i, r, c) in enumerate(rows)]
    batch = ExtractionBatch(turns=turns, index_context="neighbors")
    return run_sync(ExtractiveExtractor().extract(batch))


def _unit(rng, n=8):
    v = rng.normal(size=n)
    return v / np.linalg.norm(v)


def test_contexts_are_sums_of_turn_vectors_and_one_sentence_turns_reuse_their_entry() -> None:
    entries = _entries()
    lines = context_lines(entries)
    # t2 (two sentences) has the context "t1\nt2", t3 (one sentence) has "t2"; t4 has "t3"
    assert lines == [
        "assistant: What do you do for work?",
        "user: I am a nurse at the city hospital. Night shifts mostly, which is hard.",
        "assistant: That sounds tiring.",
    ]
    # one-sentence turns' lines are their entries' own text: no extra model pass for them
    assert {lines[0], lines[2]} <= {e.memory for e in entries}
    rng = np.random.default_rng(0)
    vec = {line: _unit(rng) for line in lines}
    got = context_vectors(entries, vec)
    t2 = next(e for e in entries if e.source_ids == ["t2"]).context
    t3 = next(e for e in entries if e.source_ids == ["t3"]).context
    want = vec[lines[0]] + vec[lines[1]]
    assert np.allclose(got[t2], want / np.linalg.norm(want)) and np.allclose(got[t3], vec[lines[1]])


def test_blend_keeps_one_weight_per_context_so_norms_recover_own_similarity() -> None:
    entries = _entries()
    rng = np.random.default_rng(1)
    facts = [_unit(rng) for _ in entries]
    contexts = context_vectors(entries, {line: _unit(rng) for line in context_lines(entries)})
    q = _unit(rng)
    out = blend(entries, facts, contexts, 0.35)
    sib = [i for i, e in enumerate(entries) if e.source_ids == ["t2"]]
    assert len(sib) == 2
    own = [float(out[i][0] @ q) * out[i][1] for i in sib]
    plain = [float(facts[i] @ q) for i in sib]
    # score * norm differs from the fact's own similarity only by a term the siblings share
    c = contexts[entries[sib[0]].context]
    mean = np.mean([facts[i] for i in sib], axis=0)
    gate = min(1.0, max(0.0, (float(mean @ c) / np.linalg.norm(mean) - 0.1) / 0.3))
    assert np.isclose(own[0] - own[1], (1 - 0.35 * gate) * (plain[0] - plain[1]))

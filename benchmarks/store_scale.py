"""Retrieval latency at scale: ``LightMemory.retrieve()`` over 10k and 100k entries.

What it measures
    For each store size (default 10,000 and 100,000 entries spread evenly over 1,000
    users) and each retrieval strategy (``embedding``, ``context``, ``hybrid``), the
    wall-clock latency of ``memory.retrieve(query, limit=10, user_id=<random user>,
    strategy=s)`` -- end to end, INCLUDING embedding the query with the real packaged
    all-MiniLM-L6-v2 (the default ``SentenceTransformerEmbedder``). To show where the
    time goes it also times, on the same queries:

    * the query embedding alone (``embedder.embed([q])``),
    * the store search alone (``store.search(scope, plan)`` with the query vectors
      computed beforehand, i.e. the engine call plus payload conversion),
    * the bulk build (ingest rate in points/s) and the store size on disk,
    * optionally a breakdown of the query embedding (tokenizer vs model forward,
      sentence-transformers overhead, torch threads, dynamic int8 quantization).

How the store is built (fast, and what that means for the numbers)
    100k texts are NOT pushed through the embedding model. Memory texts are synthetic
    templated sentences ("Maya: I went hiking near Portland with Biscuit on
    Saturday."). Each user gets a handful (``--real-per-user``, default 5) of entries
    about its own persona whose dense vectors are real MiniLM embeddings; every other
    ("bulk") entry gets a seeded random unit vector. So: **bulk dense vectors are
    random; only the per-user persona facts and the queries are embedded for real.**
    Queries ask about a persona fact ("Where did Maya go hiking?"), so they have real
    neighbours; the hit rate of that fact in the top 10 is reported as a sanity
    check, not as a quality metric. BM25 sparse vectors are real for every entry
    (``indexing.sparse_vector(Bm25Encoder(), entry)``).

    Points are written straight through the store protocol (``store.upsert(scope,
    points)`` with ``indexing.to_point``), buffered ~``--batch`` points at a time and
    issued as one upsert per scope (upsert requires one scope per call). The store is
    opened through a ``LightMemory`` and its private ``_store`` is used for the bulk
    write and the search-only timing -- acceptable for a benchmark, not for callers.

Reproduce
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/store_scale.py
    .venv/bin/python benchmarks/store_scale.py --sizes 10000 100000 --users 1000 --queries 300

    (the script sets OMP_NUM_THREADS=1 and HF_HUB_OFFLINE=1 itself unless they are
    already set; set OMP_NUM_THREADS=2 to let torch use both cores.) Results are
    printed as a table and written to ``benchmarks/results/store_scale.json``
    together with machine info and the exact command line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from lightmem_core import LightMemory, MemoryEntry, Scope  # noqa: E402
from lightmem_core import indexing, retrieve as _retrieve  # noqa: E402
from lightmem_core import textproc  # noqa: E402
from lightmem_core.embed import SentenceTransformerEmbedder  # noqa: E402
from lightmem_core.lexical import Bm25Encoder  # noqa: E402
from lightmem_core.store.base import Filter, Match, MemoryStore, PointIn  # noqa: E402

STRATEGIES = ("embedding", "context", "hybrid")
TARGET_P95_MS = 15.0
RESULTS = Path(__file__).resolve().parent / "results" / "store_scale.json"
NS = uuid.UUID("6f1c2a52-3c1e-4b8e-9a43-0d5b1f2e7a10")

# --- synthetic vocabulary ----------------------------------------------------------------
NAMES = """Maya Liam Olivia Noah Emma Ava Ethan Sophia Lucas Mia Amelia Mateo Harper Elijah Aria James Chloe
Benjamin Zoe Henry Nora Leo Layla Jack Riley Owen Lily Wyatt Hazel Caleb Ellie Isaac Aurora Jonah Stella Ezra
Violet Miles Ivy Theo Ruby Felix Iris Hugo Clara Oscar Alice Ravi Priya Kenji Yuki Omar Leila Diego Lucia Tomas
Ingrid Anders Fatima Kwame Amara Nikolai Sasha Mei Wei Hana Jonas""".split()
PLACES = """Portland Seattle Denver Boulder Austin Chicago Boston Vancouver Toronto Montreal Lisbon Porto Madrid Seville
Barcelona Paris Lyon Berlin Munich Vienna Prague Krakow Copenhagen Oslo Bergen Stockholm Helsinki Dublin Galway
Edinburgh Glasgow Kyoto Osaka Tokyo Seoul Busan Taipei Hanoi Bangkok Bali Sydney Melbourne Auckland Queenstown
Nairobi Marrakech Cairo Istanbul Athens Naples Florence Rome Zurich Geneva Reykjavik Anchorage Tucson Sedona""".split()
HOBBIES = [
    ("hiking", "go hiking"), ("kayaking", "go kayaking"), ("climbing", "go climbing"), ("cycling", "go cycling"),
    ("running", "go running"), ("skiing", "go skiing"), ("surfing", "go surfing"), ("camping", "go camping"),
    ("fishing", "go fishing"), ("birdwatching", "go birdwatching"), ("sailing", "go sailing"),
    ("snorkeling", "go snorkeling"), ("paddleboarding", "go paddleboarding"), ("trail running", "go trail running"),
]
PETS = """Biscuit Pepper Mochi Luna Milo Nala Ziggy Olive Rocket Pickles Waffles Clover Juniper Maple Pretzel Sprout
Tofu Noodle Bean Pumpkin Ginger Scout Bandit Shadow Cosmo Pixel Fig Basil Truffle Nugget""".split()
SPECIES = ["dog", "cat", "rabbit", "parrot", "hamster", "tortoise", "ferret", "corgi", "beagle", "kitten"]
JOBS = ["nurse", "data analyst", "carpenter", "teacher", "pharmacist", "architect", "barista", "software engineer",
        "paramedic", "librarian", "graphic designer", "electrician", "chef", "accountant", "veterinarian",
        "physiotherapist", "translator", "journalist", "pilot", "marine biologist"]
COMPANIES = """Northwind Contoso Initech Globex Umbrella Hooli Vandelay Acme Stark Wayne Cyberdyne Soylent Tyrell
Wonka Gringotts Aperture Massive Dynamic Oscorp Pied Piper""".split()
FOODS = ["lasagna", "pad thai", "ramen", "paella", "tacos", "dumplings", "risotto", "curry", "shakshuka", "pho",
         "sourdough bread", "banana bread", "gnocchi", "falafel", "pierogi", "bibimbap", "empanadas", "chili"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ITEMS = ["bike helmet", "rain jacket", "coffee grinder", "tent", "pair of boots", "guitar", "camera lens", "desk lamp",
         "backpack", "blender", "sketchbook", "yoga mat", "record player", "telescope", "cookbook", "kettle"]
SHOPS = ["farmers market", "thrift store", "hardware store", "bookshop", "outdoor shop", "flea market", "mall",
         "corner store", "garden centre", "music shop"]
EVENTS = ["concert", "film festival", "street fair", "marathon", "wedding", "art exhibition", "book launch",
          "food festival", "jazz night", "science fair", "comedy show", "pottery class"]
ADJS = ["amazing", "exhausting", "crowded", "relaxing", "disappointing", "unforgettable", "chaotic", "lovely",
        "freezing", "way too long", "surprisingly fun", "a bit boring"]
SKILLS = ["Spanish", "Japanese", "pottery", "the piano", "salsa dancing", "woodworking", "watercolour painting",
          "chess", "baking", "Python", "knitting", "photography", "the cello", "rock climbing"]
MEALS = ["brunch", "lunch", "dinner", "coffee", "drinks", "breakfast"]
RELATIONS = ["sister", "brother", "cousin", "aunt", "uncle", "best friend", "roommate", "neighbour", "coworker"]
FEELINGS = ["nervous", "excited", "stressed", "proud", "tired", "relieved", "grateful", "homesick"]

BULK_TEMPLATES: list[Callable[[random.Random, str], str]] = [
    lambda r, n: f"{n}: I bought a new {r.choice(ITEMS)} at the {r.choice(SHOPS)} on {r.choice(WEEKDAYS)}.",
    lambda r, n: f"{n} said the {r.choice(EVENTS)} in {r.choice(PLACES)} was {r.choice(ADJS)}.",
    lambda r, n: f"{n} started learning {r.choice(SKILLS)} in {r.choice(MONTHS)} {r.randint(2019, 2024)}.",
    lambda r, n: f"{n} met {r.choice(NAMES)} for {r.choice(MEALS)} at a small place in {r.choice(PLACES)}.",
    lambda r, n: f"{n}: my {r.choice(RELATIONS)} {r.choice(NAMES)} is moving to {r.choice(PLACES)} next {r.choice(MONTHS)}.",
    lambda r, n: f"{n} feels {r.choice(FEELINGS)} about the {r.choice(EVENTS)} on {r.choice(WEEKDAYS)}.",
    lambda r, n: f"{n}: we went {r.choice(HOBBIES)[0]} near {r.choice(PLACES)} last {r.choice(WEEKDAYS)}.",
    lambda r, n: f"{n} recommended a {r.choice(FOODS)} recipe to {r.choice(NAMES)}.",
    lambda r, n: f"{n}'s {r.choice(RELATIONS)} gave them a {r.choice(ITEMS)} for their birthday in {r.choice(MONTHS)}.",
    lambda r, n: f"{n} watched a documentary about {r.choice(PLACES)} and now wants to visit in {r.choice(MONTHS)}.",
]


@dataclass(frozen=True)
class Persona:
    name: str
    hobby: tuple[str, str]
    place: str
    pet: str
    species: str
    job: str
    company: str
    trip: str
    month: str
    food: str
    weekday: str


def persona(rng: random.Random) -> Persona:
    return Persona(
        name=rng.choice(NAMES), hobby=rng.choice(HOBBIES), place=rng.choice(PLACES), pet=rng.choice(PETS),
        species=rng.choice(SPECIES), job=rng.choice(JOBS), company=rng.choice(COMPANIES), trip=rng.choice(PLACES),
        month=rng.choice(MONTHS), food=rng.choice(FOODS), weekday=rng.choice(WEEKDAYS),
    )


def persona_facts(p: Persona) -> list[tuple[str, str]]:
    """(memory text, question about it) for the facts that get real embeddings."""
    return [
        (f"{p.name}: I went {p.hobby[0]} near {p.place} with {p.pet} on {p.weekday}.",
         f"Where did {p.name} {p.hobby[1]}?"),
        (f"{p.name} works as a {p.job} at {p.company}.", f"What does {p.name} do for work?"),
        (f"{p.name}'s {p.species} is called {p.pet}.", f"What is the name of {p.name}'s {p.species}?"),
        (f"{p.name} is planning a trip to {p.trip} in {p.month}.", f"When is {p.name} travelling to {p.trip}?"),
        (f"{p.name} loves cooking {p.food} for friends on weekends.", f"What does {p.name} like to cook?"),
        (f"{p.name}: I usually {p.hobby[1]} on {p.weekday} mornings.", f"Which day does {p.name} {p.hobby[1]}?"),
        (f"{p.name} adopted {p.pet} from a shelter in {p.place}.", f"Where did {p.name} adopt {p.pet}?"),
        (f"{p.name} has lived in {p.place} for years.", f"Which city does {p.name} live in?"),
    ]


def user_id(u: int) -> str:
    return f"user-{u:04d}"


# --- statistics --------------------------------------------------------------------------------
def pct(sorted_ms: Sequence[float], q: float) -> float:
    """Percentile by linear interpolation (numpy's default)."""
    return float(np.percentile(np.asarray(sorted_ms), q)) if sorted_ms else float("nan")


def summary(ms: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(ms, dtype=np.float64)
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
        "max_ms": round(float(arr.max()), 3),
    }


def time_calls(fn: Callable[[Any], Any], items: Sequence[Any], warmup: Sequence[Any] = ()) -> list[float]:
    for it in warmup:
        fn(it)
    out: list[float] = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- data generation ---------------------------------------------------------------------------------
class Corpus:
    """Personas, their real-embedded facts, and the queries about them (size-independent)."""

    def __init__(self, users: int, real_per_user: int, seed: int) -> None:
        rng = random.Random(seed)
        self.users = users
        self.personas = [persona(rng) for _ in range(users)]
        self.real_per_user = real_per_user
        self.facts = [persona_facts(p)[:real_per_user] for p in self.personas]
        self.vectors: Optional[np.ndarray] = None  # (users, real_per_user, dims)
        self.embed_seconds = 0.0

    def embed(self, embedder: SentenceTransformerEmbedder) -> None:
        texts = [text for facts in self.facts for text, _ in facts]
        t0 = time.perf_counter()
        vecs = embedder.embed(texts)
        self.embed_seconds = time.perf_counter() - t0
        self.vectors = vecs.reshape(self.users, self.real_per_user, -1)

    def queries(self, n: int, seed: int, real_here: int) -> list[tuple[int, int, str]]:
        """(user index, fact index, question); facts limited to those stored at this size."""
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            u = rng.randrange(self.users)
            k = rng.randrange(real_here)
            out.append((u, k, self.facts[u][k][1]))
        return out


def fact_id(u: int, k: int) -> str:
    return str(uuid.uuid5(NS, f"{u}/real/{k}"))


def make_entry(memory: str, u: int, speaker: str, ts: datetime, source: str, eid: str) -> MemoryEntry:
    return MemoryEntry(
        id=eid,
        memory=memory,
        speaker_id=speaker.lower(),
        speaker_name=speaker,
        time_stamp=ts,
        recorded_at=ts + timedelta(minutes=1),
        entities=textproc.entities(memory),
        keywords=textproc.keywords(memory),
        source_ids=[source],
        user_id=user_id(u),
    )


@dataclass
class BuildStats:
    points: int
    per_user: int
    real_per_user: int
    generate_s: float
    write_s: float
    upsert_calls: int

    @property
    def total_s(self) -> float:
        return self.generate_s + self.write_s


def build(store: MemoryStore, corpus: Corpus, size: int, batch: int, seed: int, dims: int,
          progress: Callable[[str], None]) -> BuildStats:
    """Write ``size`` entries over ``corpus.users`` users; returns timing of generation vs write."""
    assert corpus.vectors is not None
    users = corpus.users
    base, extra = divmod(size, users)
    real_here = min(corpus.real_per_user, base)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    bm25 = Bm25Encoder()
    start = datetime(2023, 1, 1)
    buffer: dict[Scope, list[PointIn]] = {}
    buffered = 0
    gen_s = write_s = 0.0
    calls = 0
    written = 0
    t_report = time.perf_counter()

    def flush() -> None:
        nonlocal buffered, write_s, calls
        t0 = time.perf_counter()
        for scope, points in buffer.items():
            store.upsert(scope, points)
            calls += 1
        write_s += time.perf_counter() - t0
        buffer.clear()
        buffered = 0

    for u in range(users):
        t0 = time.perf_counter()
        n = base + (1 if u < extra else 0)
        p = corpus.personas[u]
        n_bulk = n - real_here
        bulk = nrng.standard_normal((max(n_bulk, 0), dims)).astype(np.float32)
        bulk /= np.linalg.norm(bulk, axis=1, keepdims=True)
        points: list[PointIn] = []
        for k in range(n):
            ts = start + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
            source = f"{user_id(u)}/turn-{k // 2}"
            if k < real_here:
                entry = make_entry(corpus.facts[u][k][0], u, p.name, ts, source, fact_id(u, k))
                dense = corpus.vectors[u, k]
            else:
                text = rng.choice(BULK_TEMPLATES)(rng, p.name)
                entry = make_entry(text, u, p.name, ts, source, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
                dense = bulk[k - real_here]
            points.append(indexing.to_point(entry, dense, indexing.sparse_vector(bm25, entry)))
        buffer[Scope(user_id=user_id(u))] = points
        buffered += len(points)
        written += len(points)
        gen_s += time.perf_counter() - t0
        if buffered >= batch:
            flush()
        if time.perf_counter() - t_report > 15:
            t_report = time.perf_counter()
            progress(f"  built {written:,}/{size:,} points (generate {gen_s:.1f}s, write {write_s:.1f}s)")
    if buffered:
        flush()
    return BuildStats(points=written, per_user=base, real_per_user=real_here, generate_s=gen_s, write_s=write_s,
                      upsert_calls=calls)


# --- measurement ---------------------------------------------------------------------------------------
def current_filter() -> Filter:
    return Filter(must=(Match("_current", 1),))


class Measure:
    """All timings for one built store."""

    def __init__(self, memory: LightMemory, queries: list[tuple[int, int, str]], warmup: list[tuple[int, int, str]]):
        self.memory = memory
        self.queries = queries
        self.warmup = warmup
        # Query vectors computed once, outside any timing, for the search-only runs.
        texts = [q for _, _, q in warmup + queries]
        dense = memory.embedder.embed(texts)
        self.dense = {t: dense[i] for i, t in enumerate(texts)}
        self.sparse = {t: memory._bm25.query(t) for t in texts}

    def _plan(self, strategy: str, text: str, limit: int = 10) -> list[Any]:
        cfg = self.memory.config.retrieval
        plans = _retrieve.plan(strategy, dense=self.dense[text], sparse=self.sparse[text], limit=limit,
                               flt=current_filter(), config=cfg)
        return [q for _, q in plans]

    def search_only(self, strategy: str, queries: Optional[list[tuple[int, int, str]]] = None) -> list[float]:
        store = self.memory._store
        prepared = [(Scope(user_id=user_id(u)), self._plan(strategy, q)) for u, _, q in (queries or self.queries)]
        warm = [(Scope(user_id=user_id(u)), self._plan(strategy, q)) for u, _, q in self.warmup]
        return time_calls(lambda a: store.search(a[0], a[1]), prepared, warm)

    def embed_only(self) -> list[float]:
        emb = self.memory.embedder
        return time_calls(lambda q: emb.embed([q[2]]), self.queries, self.warmup)

    def retrieve(self, strategy: str) -> tuple[list[float], float]:
        mem = self.memory
        found = 0

        def one(q: tuple[int, int, str]) -> list[Any]:
            return mem.retrieve(q[2], limit=10, user_id=user_id(q[0]), strategy=strategy)

        for q in self.warmup:
            one(q)
        out: list[float] = []
        for q in self.queries:
            t0 = time.perf_counter()
            hits = one(q)
            out.append((time.perf_counter() - t0) * 1000.0)
            target = fact_id(q[0], q[1])
            found += any(h.entry.id == target for h in hits)
        return out, found / len(self.queries)


# --- embedding breakdown -------------------------------------------------------------------------------
def profile_embedding(embedder: SentenceTransformerEmbedder, texts: list[str], warm: list[str]) -> dict[str, Any]:
    """Where the query embedding's time goes; each variant on the same single-query calls."""
    import torch

    model = embedder.model
    transformer = model[0]
    hf = transformer.auto_model
    tok = model.tokenizer
    feats = [model.preprocess([t]) for t in texts]
    wfeats = [model.preprocess([t]) for t in warm]
    lengths = [int(f["input_ids"].shape[1]) for f in feats]

    def raw(f: dict[str, Any], m: Any = hf) -> np.ndarray:
        out = m(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).last_hidden_state
        mask = f["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    variants: dict[str, Any] = {}
    original_threads = torch.get_num_threads()
    thread_options = sorted({original_threads, os.cpu_count() or 1})
    try:
        for threads in thread_options:
            torch.set_num_threads(threads)
            tag = f"threads={threads}"
            variants[f"embedder.embed (library path), {tag}"] = summary(
                time_calls(lambda t: embedder.embed([t]), texts, warm))
            variants[f"tokenizer only (model.preprocess), {tag}"] = summary(
                time_calls(lambda t: model.preprocess([t]), texts, warm))
            with torch.inference_mode():
                variants[f"ST forward only (model(features)), inference_mode, {tag}"] = summary(
                    time_calls(lambda f: model(dict(f)), feats, wfeats))
                variants[f"raw HF forward + mean pool + normalize, inference_mode, {tag}"] = summary(
                    time_calls(raw, feats, wfeats))
            with torch.no_grad():
                variants[f"raw HF forward + pool, no_grad, {tag}"] = summary(time_calls(raw, feats, wfeats))
        torch.set_num_threads(original_threads)
        # Dynamic int8 quantization of the Linear layers: speed and how close the vectors stay.
        quant_info: dict[str, Any] = {}
        try:
            qhf = torch.ao.quantization.quantize_dynamic(copy.deepcopy(hf), {torch.nn.Linear}, dtype=torch.qint8)
            with torch.inference_mode():
                for threads in thread_options:
                    torch.set_num_threads(threads)
                    variants[f"raw forward, dynamic int8 quantized Linear, threads={threads}"] = summary(
                        time_calls(lambda f: raw(f, qhf), feats, wfeats))
                torch.set_num_threads(original_threads)
                ref = np.vstack([raw(f) for f in feats[:100]])
                q8 = np.vstack([raw(f, qhf) for f in feats[:100]])
            cos = (ref * q8).sum(1)
            quant_info = {"cosine_to_fp32_min": round(float(cos.min()), 4), "cosine_to_fp32_mean": round(float(cos.mean()), 4)}
        except Exception as exc:  # quantization backends differ by build; report instead of failing
            quant_info = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        torch.set_num_threads(original_threads)
    return {
        "query_tokens": {"mean": round(float(np.mean(lengths)), 1), "max": int(max(lengths))},
        "torch_threads_default": original_threads,
        "variants": variants,
        "int8_quality": quant_info,
        "tokenizer_class": type(tok).__name__,
    }


# --- reporting --------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import qdrant_edge  # noqa: F401
    import sentence_transformers
    import torch

    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        edge_version = version("qdrant-edge-py")
    except Exception:
        edge_version = "unknown"
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE"),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "sentence_transformers": sentence_transformers.__version__,
        "qdrant_edge_py": edge_version,
        "numpy": np.__version__,
    }


def print_tables(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a core dependency
        print(json.dumps(result["sizes"], indent=2))
        return
    console = Console()
    table = Table(title=f"retrieve() latency, ms (target p95 <= {TARGET_P95_MS:g} ms at 100k / 1,000 users)")
    for col in ("entries", "what", "p50", "p95", "p99", "mean", "hit@10"):
        table.add_column(col, justify="right" if col not in ("what",) else "left")
    for s in result["sizes"]:
        label = f"{s['entries']:,}"
        for strat in STRATEGIES:
            r = s["retrieve"][strat]
            ok = "[green]" if r["p95_ms"] <= TARGET_P95_MS else "[red]"
            table.add_row(label, f"retrieve {strat}", f"{r['p50_ms']:.2f}", f"{ok}{r['p95_ms']:.2f}",
                          f"{r['p99_ms']:.2f}", f"{r['mean_ms']:.2f}", f"{s['hit_at_10'][strat]:.2f}")
            label = ""
        e = s["embed_only"]
        table.add_row("", "  query embedding only", f"{e['p50_ms']:.2f}", f"{e['p95_ms']:.2f}", f"{e['p99_ms']:.2f}",
                      f"{e['mean_ms']:.2f}", "")
        for strat in STRATEGIES:
            r = s["search_only"][strat]
            table.add_row("", f"  store search only ({strat})", f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                          f"{r['p99_ms']:.2f}", f"{r['mean_ms']:.2f}", "")
        b = s["build"]
        table.add_row("", f"  build: {b['points_per_s_write']:,.0f} pts/s write, {b['points_per_s_end_to_end']:,.0f} pts/s "
                      f"end-to-end; {s['disk_mb']['store']:.1f} MB on disk; optimize: {s['optimize']['ran']}",
                      "", "", "", "", "", end_section=True)
    console.print(table)
    prof = result.get("embedding_profile")
    if prof:
        t = Table(title=f"query embedding breakdown (mean {prof['query_tokens']['mean']} tokens/query), ms")
        for col in ("variant", "p50", "p95", "mean"):
            t.add_column(col, justify="left" if col == "variant" else "right")
        for name, r in prof["variants"].items():
            t.add_row(name, f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['mean_ms']:.2f}")
        console.print(t)
        if prof.get("int8_quality"):
            console.print(f"int8 vs fp32 query vectors: {prof['int8_quality']}")


# --- main -------------------------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="store sizes (entries)")
    ap.add_argument("--users", type=int, default=1000, help="users the entries are spread over")
    ap.add_argument("--queries", type=int, default=300, help="timed queries per strategy per size")
    ap.add_argument("--warmup", type=int, default=20, help="untimed warm-up calls before each timed run")
    ap.add_argument("--real-per-user", type=int, default=5, help="entries per user with real MiniLM vectors (max 8)")
    ap.add_argument("--batch", type=int, default=1000, help="points buffered per write round (one upsert per scope)")
    ap.add_argument("--store", type=Path, default=None, help="store directory (default: a temp dir, deleted after)")
    ap.add_argument("--optimize", choices=("auto", "always", "never"), default="auto",
                    help="run store.optimize() after the build: auto = only if store search p95 exceeds --optimize-above-ms")
    ap.add_argument("--optimize-above-ms", type=float, default=3.0)
    ap.add_argument("--no-profile", action="store_true", help="skip the query-embedding breakdown")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not 1 <= args.real_per_user <= 8:
        ap.error("--real-per-user must be 1..8")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    result: dict[str, Any] = {
        "benchmark": "store_scale",
        "command": command,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE")},
        "started": datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "method": {
            "bulk_dense_vectors": "random unit vectors (numpy, seeded); NOT model embeddings",
            "real_dense_vectors": f"{args.real_per_user} persona facts per user embedded with the packaged MiniLM",
            "queries": "templated questions about a persona fact, embedded for real inside retrieve()",
            "sparse_vectors": "real BM25 (indexing.sparse_vector(Bm25Encoder(), entry)) for every entry",
            "write_path": "LightMemory._store.upsert(scope, points) via indexing.to_point (private store, benchmark only)",
            "retrieve_call": "memory.retrieve(query, limit=10, user_id=<random user>, strategy=s)",
            "timer": "time.perf_counter, single thread, sequential calls, gc enabled",
            "queries_per_strategy": args.queries,
            "warmup_calls": args.warmup,
            "users": args.users,
            "seed": args.seed,
            "target_p95_ms": TARGET_P95_MS,
        },
        "sizes": [],
    }

    root = args.store
    temp = root is None
    if temp:
        root = Path(tempfile.mkdtemp(prefix="lightmem_store_scale_"))
    else:
        root.mkdir(parents=True, exist_ok=True)

    embedder = SentenceTransformerEmbedder()
    t0 = time.perf_counter()
    dims = embedder.dims
    result["model_load_s"] = round(time.perf_counter() - t0, 2)
    corpus = Corpus(args.users, args.real_per_user, args.seed)
    log(f"embedding {args.users * args.real_per_user:,} persona facts with MiniLM ...")
    corpus.embed(embedder)
    result["real_fact_embedding"] = {"texts": args.users * args.real_per_user, "seconds": round(corpus.embed_seconds, 2)}

    try:
        for size in args.sizes:
            path = root / f"entries_{size}"
            if path.exists() and any(path.iterdir()):
                raise SystemExit(f"{path} is not empty; pass an empty --store directory")
            log(f"== {size:,} entries over {args.users:,} users ({path})")
            # The store is opened through LightMemory (the real retrieve path); the bulk
            # write below uses its private _store directly -- fine for a benchmark.
            memory = LightMemory({"store": {"path": str(path)}}, embedder=embedder)
            try:
                stats = build(memory._store, corpus, size, args.batch, args.seed + size, dims, log)
                log(f"  build: {stats.points:,} points, generate {stats.generate_s:.1f}s, write {stats.write_s:.1f}s")
                real_here = stats.real_per_user
                queries = corpus.queries(args.queries, args.seed * 31 + size, real_here)
                warmup = corpus.queries(args.warmup, args.seed * 17 + size, real_here)
                m = Measure(memory, queries, warmup)

                # Optimize only if the engine search itself is slow on the fresh build.
                probe = queries[: min(100, len(queries))]
                pre = {s: summary(m.search_only(s, probe)) for s in STRATEGIES}
                worst = max(r["p95_ms"] for r in pre.values())
                opt: dict[str, Any] = {"policy": args.optimize, "search_p95_before_ms": {s: r["p95_ms"] for s, r in pre.items()},
                                       "ran": False}
                if args.optimize == "always" or (args.optimize == "auto" and worst > args.optimize_above_ms):
                    log(f"  optimize() (worst search p95 {worst:.2f} ms) ...")
                    t = time.perf_counter()
                    memory.optimize()
                    opt.update(ran=True, seconds=round(time.perf_counter() - t, 2))
                    post = {s: summary(m.search_only(s, probe)) for s in STRATEGIES}
                    opt["search_p95_after_ms"] = {s: r["p95_ms"] for s, r in post.items()}
                else:
                    opt["reason"] = (f"not needed: worst store-search p95 {worst:.2f} ms <= {args.optimize_above_ms} ms"
                                     if args.optimize == "auto" else "disabled")

                gc.collect()
                log("  timing retrieve() ...")
                retrieve_ms: dict[str, Any] = {}
                hit: dict[str, float] = {}
                for s in STRATEGIES:
                    ms, rate = m.retrieve(s)
                    retrieve_ms[s] = summary(ms)
                    hit[s] = round(rate, 3)
                    log(f"    {s:9s} p50 {retrieve_ms[s]['p50_ms']:.2f}  p95 {retrieve_ms[s]['p95_ms']:.2f} ms  hit@10 {rate:.2f}")
                log("  timing embedding only / search only ...")
                embed_ms = summary(m.embed_only())
                search_ms = {s: summary(m.search_only(s)) for s in STRATEGIES}
            finally:
                memory.close()
            sizes = {"store": dir_size(path / "lightmem_entries"), "total_with_journal": dir_size(path)}
            result["sizes"].append({
                "entries": stats.points,
                "users": args.users,
                "entries_per_user": stats.per_user,
                "real_vectors_per_user": stats.real_per_user,
                "build": {
                    "generate_s": round(stats.generate_s, 2),
                    "write_s": round(stats.write_s, 2),
                    "total_s": round(stats.total_s, 2),
                    "upsert_calls": stats.upsert_calls,
                    "points_per_s_write": round(stats.points / stats.write_s, 1),
                    "points_per_s_end_to_end": round(stats.points / stats.total_s, 1),
                    "note": "generate = synthetic text + MemoryEntry + BM25 sparse + to_point; write = store.upsert",
                },
                "optimize": opt,
                "disk_bytes": sizes,
                "disk_mb": {k: round(v / 1e6, 2) for k, v in sizes.items()},
                "retrieve": retrieve_ms,
                "hit_at_10": hit,
                "embed_only": embed_ms,
                "search_only": search_ms,
                "overhead_p50_ms": {
                    s: round(retrieve_ms[s]["p50_ms"] - (embed_ms["p50_ms"] if s != "context" else 0.0)
                             - search_ms[s]["p50_ms"], 3)
                    for s in STRATEGIES
                },
                "meets_target_p95": {s: retrieve_ms[s]["p95_ms"] <= TARGET_P95_MS for s in STRATEGIES},
            })
        if not args.no_profile:
            log("== query embedding breakdown ...")
            texts = [q for _, _, q in corpus.queries(args.queries, args.seed * 13, args.real_per_user)]
            warm = [q for _, _, q in corpus.queries(args.warmup, args.seed * 11, args.real_per_user)]
            result["embedding_profile"] = profile_embedding(embedder, texts, warm)
    finally:
        if temp:
            shutil.rmtree(root, ignore_errors=True)

    result["finished"] = datetime.now().isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()

"""One memory, many clients: ``lightmem serve`` under eight client processes, against the
same mix in process, with a SIGKILL of the server in the middle of the HTTP run.

1. Two LoCoMo dev conversations are ingested (offline default) into a fresh store, one user each.
2. In process: ``--clients`` threads share one ``LightMemory`` for ``--inproc-seconds`` s, each
   looping ``retrieve`` of a LoCoMo question (``--read-share``) or ``add_memory`` of a new turn;
   then the same again with the threads' reads queued for a pool of one thread per core, as
   the server queues them (the HTTP cost alone, with the scheduling equal on both sides).
3. Over HTTP: ``lightmem serve`` on that store, and ``--clients`` processes doing the same
   through ``RemoteMemory`` (adds return once journaled); each makes one untimed call first,
   as the threads in process are warm, and all start together. Halfway through, the server is
   SIGKILLed and started again; the clients' retries carry them over the gap.
4. After the run: every acknowledged turn must be stored or pending, and none stored twice.

    python benchmarks/service.py [--clients 8] [--seconds 60] [--read-share 0.7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import _locomo  # noqa: E402
from _common import git_state  # noqa: E402

CONVERSATIONS = ("conv-26", "conv-30")
READY_S = 8.0  # the client processes start, import and make one untimed call within this

CLIENT = r"""
import json, random, sys, time
sys.path.insert(0, sys.argv[5])
from lightmem_core import RemoteMemory
url, seconds, share, out, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[6])
slot, clients, start_at = int(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9])
jobs = json.loads(sys.stdin.read())
memory = RemoteMemory(url, retries=8, backoff=0.25, wait=False, timeout=30)
rng = random.Random(out)
lat = {"retrieve": [], "add": []}
acked, errors, n = [], [], 0
# untimed: the first call builds the HTTP client and imports what it needs (150-270 ms while
# the other clients start); the threads in process are warm too when they are timed
memory.retrieve(jobs[0][1], user_id=jobs[0][0])
time.sleep(max(0.0, start_at - time.time()))  # all clients start together, once all are ready
start = time.perf_counter()
end = start + seconds
gap = clients / rate if rate else 0.0  # open loop: this client's share of --rate, evenly spaced
due = start + slot * gap / clients
while time.perf_counter() < end:
    if gap:
        time.sleep(max(0.0, due - time.perf_counter()))
    t = due if gap else time.perf_counter()  # from when the request was due: queueing counts
    due += gap
    user, question = rng.choice(jobs)
    try:
        if rng.random() < share:
            memory.retrieve(question, user_id=user)
            lat["retrieve"].append(time.perf_counter() - t)
        else:
            n += 1
            tid = f"{out.rsplit('/', 1)[-1]}-{n}"
            r = memory.add_memory([{"id": tid, "role": "user", "content": f"Side note {n}: {question}"}], user_id=user)
            lat["add"].append(time.perf_counter() - t)
            acked.append([user, tid])
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
json.dump({"lat": lat, "acked": acked, "errors": errors}, open(out, "w"))
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50), 2),
        "p95_ms": round(pct(values, 95), 2),
        "p99_ms": round(pct(values, 99), 2),
    }


def sequential(retrieve: Any, jobs: list[tuple[str, str]], n: int = 200) -> dict[str, Any]:
    """One caller, nothing else running: what a request costs, without queueing behind others."""
    rng = random.Random(7)
    picked = [rng.choice(jobs) for _ in range(n + 20)]
    for user, q in picked[:20]:
        retrieve(q, user_id=user)
    times = []
    for user, q in picked[20:]:
        t = time.perf_counter()
        retrieve(q, user_id=user)
        times.append(time.perf_counter() - t)
    return summary(times)


def in_process(
    store: Path,
    jobs: list[tuple[str, str]],
    args: argparse.Namespace,
    *,
    as_server: bool = False,
) -> dict[str, Any]:
    """``--clients`` threads on one ``LightMemory``. ``as_server``: scheduled as the server
    schedules the same calls (adds journal and return, one background thread extracts, reads
    queue for a pool of one thread per core), so what remains between this and HTTP is the
    cost of HTTP itself."""
    from concurrent.futures import ThreadPoolExecutor

    from lightmem_core import LightMemory
    from lightmem_core.server.app import cores

    reads = ThreadPoolExecutor(cores()) if as_server else None
    lat: dict[str, list[float]] = {"retrieve": [], "add": []}
    lock, wake, stop = threading.Lock(), threading.Event(), threading.Event()
    users = sorted({u for u, _ in jobs})
    with LightMemory({"store": {"path": str(store)}}) as memory:
        memory.retrieve("warm up", user_id=jobs[0][0])
        alone = sequential(memory.retrieve, jobs)

        def extractor() -> None:
            while not stop.is_set():
                if wake.wait(0.1):
                    wake.clear()
                    for user in users:
                        memory.extract_pending(user_id=user)

        start = time.perf_counter()
        end = start + args.inproc_seconds
        gap = args.clients / args.rate if args.rate else 0.0

        def worker(i: int) -> None:
            rng = random.Random(i)
            n = 0
            due = start + i * gap / args.clients
            while time.perf_counter() < end:
                if gap:
                    time.sleep(max(0.0, due - time.perf_counter()))
                t = due if gap else time.perf_counter()
                due += gap
                user, question = rng.choice(jobs)
                if rng.random() < args.read_share:
                    if reads is None:
                        memory.retrieve(question, user_id=user)
                    else:
                        reads.submit(memory.retrieve, question, user_id=user).result()
                    kind = "retrieve"
                else:
                    n += 1
                    memory.add_memory(
                        [{"id": f"inproc-{i}-{n}", "role": "user", "content": f"Side note {n}: {question}"}],
                        user_id=user,
                        defer=as_server,
                    )
                    wake.set()
                    kind = "add"
                with lock:
                    lat[kind].append(time.perf_counter() - t)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        background = threading.Thread(target=extractor) if as_server else None
        for t in [*threads, *([background] if background else [])]:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        if background:
            background.join()
        if reads is not None:
            reads.shutdown()
    return {k: summary(v) for k, v in lat.items()} | {
        "ops_per_s": round(sum(map(len, lat.values())) / args.inproc_seconds, 1),
        "retrieve_alone": alone,
    }


def start_server(store: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightmem_core.cli", "--path", str(store), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    import socket

    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--inproc-seconds", type=float, default=30.0)
    ap.add_argument("--read-share", type=float, default=0.7)
    ap.add_argument(
        "--rate", type=float, default=0.0, help="open loop: requests per second in all (0: each client back to back)"
    )
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL in the middle of the HTTP run")
    ap.add_argument("--out", default=str(HERE / "results" / "service.json"))
    args = ap.parse_args()
    from lightmem_core import LightMemory, RemoteMemory
    from lightmem_core.server.app import cores

    convs = [c for c in _locomo.load() if c.conv_id in CONVERSATIONS]
    jobs = [(c.conv_id, q["question"]) for c in convs for q in c.qa if q.get("category") in (1, 2, 3, 4)]
    with tempfile.TemporaryDirectory() as root:
        store = Path(root) / "store"
        t = time.perf_counter()
        with LightMemory({"store": {"path": str(store)}}) as memory:
            for c in convs:
                for sid, _, msgs in c.sessions:
                    memory.add_memory(msgs, user_id=c.conv_id, session_id=sid)
            entries = sum(len(memory.get_all(user_id=c.conv_id, limit=10_000)) for c in convs)
        ingest_s = time.perf_counter() - t
        print(f"ingested {entries} entries in {ingest_s:.0f}s", flush=True)
        local = in_process(store, jobs, args)
        print(f"in process: {local}", flush=True)
        pooled = in_process(store, jobs, args, as_server=True)
        print(f"in process, scheduled as the server schedules: {pooled}", flush=True)

        from tests._net import free_port

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(store, port)
        alone = sequential(RemoteMemory(url).retrieve, jobs)
        print(f"over HTTP, one caller alone: {alone}", flush=True)
        outs = [Path(root) / f"client{i}.json" for i in range(args.clients)]
        procs = []
        start_at = time.time() + READY_S
        for slot, out in enumerate(outs):
            p = subprocess.Popen(
                [sys.executable, "-c", CLIENT, url, str(args.seconds), str(args.read_share), str(out), str(ROOT)]
                + [str(args.rate), str(slot), str(args.clients), str(start_at)],
                stdin=subprocess.PIPE,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            p.stdin.write(json.dumps(jobs).encode())  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
            procs.append(p)
        kill: dict[str, Any] = {}
        if not args.no_kill:
            time.sleep(max(0.0, start_at + args.seconds / 2 - time.time()))
            server.send_signal(signal.SIGKILL)
            server.wait()
            t = time.perf_counter()
            server = start_server(store, port)
            kill = {"at_s": args.seconds / 2, "restart_s": round(time.perf_counter() - t, 2)}
            print(f"SIGKILL at {kill['at_s']}s, back after {kill['restart_s']}s", flush=True)
        for p in procs:
            p.wait()
        results = [json.loads(o.read_text()) for o in outs]
        lat = {k: [v for r in results for v in r["lat"][k]] for k in ("retrieve", "add")}
        errors = [e for r in results for e in r["errors"]]
        acked = [tuple(a) for r in results for a in r["acked"]]
        remote = RemoteMemory(url)
        remote.flush()
        lost, twice = 0, 0
        for user in {u for u, _ in acked}:
            cited = [s for e in remote.get_all(user_id=user, limit=10_000) for s in e.source_ids]
            pending = {t.id for t in remote.pending(user_id=user)}
            mine = {tid for u, tid in acked if u == user}
            lost += len(mine - set(cited) - pending)
            twice += sum(1 for s in set(cited) if s in mine and cited.count(s) > 1)
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    http = {k: summary(v) for k, v in lat.items()} | {
        "ops_per_s": round(sum(map(len, lat.values())) / args.seconds, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "acknowledged_turns": len(acked),
        "lost": lost,
        "stored_twice": twice,
        "retrieve_alone": alone,
    }
    result = {
        "command": " ".join(["python", "benchmarks/service.py", *sys.argv[1:]]),
        "clients": args.clients,
        "seconds": args.seconds,
        "read_share": args.read_share,
        "rate": args.rate,
        "entries": entries,
        "in_process": local,
        "in_process_as_server": pooled,
        "read_workers": cores(),
        "http": http,
        "sigkill": kill,
        "git": git_state(),
        "load": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"in_process": local, "in_process_as_server": pooled, "http": http, "sigkill": kill}, indent=2))


if __name__ == "__main__":
    main()

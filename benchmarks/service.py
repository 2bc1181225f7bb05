"""One memory, many clients: ``lightmem serve`` under eight client processes, against the
same mix in process, with a SIGKILL of the server in the middle of the HTTP run.

1. Two LoCoMo dev conversations are ingested (offline default) into a fresh store, one user each.
2. In process: ``--clients`` threads share one ``LightMemory`` for ``--seconds`` s, each
   looping ``retrieve`` of a LoCoMo question (``--read-share``) or ``add_memory`` of a new turn.
3. Over HTTP: ``lightmem serve`` on that store, and ``--clients`` processes doing the same
   through ``RemoteMemory`` (adds return once journaled). Halfway through, the server is
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

CLIENT = r"""
import json, random, sys, time
sys.path.insert(0, sys.argv[5])
from lightmem_core import RemoteMemory
url, seconds, share, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
jobs = json.loads(sys.stdin.read())
memory = RemoteMemory(url, retries=8, backoff=0.25, wait=False, timeout=30)
rng = random.Random(out)
lat = {"retrieve": [], "add": []}
acked, errors, n = [], [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    user, question = rng.choice(jobs)
    t = time.perf_counter()
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


def in_process(store: Path, jobs: list[tuple[str, str]], clients: int, seconds: float, share: float) -> dict[str, Any]:
    from lightmem_core import LightMemory

    lat: dict[str, list[float]] = {"retrieve": [], "add": []}
    lock = threading.Lock()
    with LightMemory({"store": {"path": str(store)}}) as memory:
        memory.retrieve("warm up", user_id=jobs[0][0])
        alone = sequential(memory.retrieve, jobs)
        end = time.monotonic() + seconds

        def worker(i: int) -> None:
            rng = random.Random(i)
            n = 0
            while time.monotonic() < end:
                user, question = rng.choice(jobs)
                t = time.perf_counter()
                if rng.random() < share:
                    memory.retrieve(question, user_id=user)
                    kind = "retrieve"
                else:
                    n += 1
                    memory.add_memory(
                        [{"id": f"inproc-{i}-{n}", "role": "user", "content": f"Side note {n}: {question}"}],
                        user_id=user,
                    )
                    kind = "add"
                with lock:
                    lat[kind].append(time.perf_counter() - t)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {k: summary(v) for k, v in lat.items()} | {
        "ops_per_s": round(sum(map(len, lat.values())) / seconds, 1),
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
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL in the middle of the HTTP run")
    ap.add_argument("--out", default=str(HERE / "results" / "service.json"))
    args = ap.parse_args()
    from lightmem_core import LightMemory, RemoteMemory

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
        local = in_process(store, jobs, args.clients, args.inproc_seconds, args.read_share)
        print(f"in process: {local}", flush=True)

        from tests._net import free_port

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(store, port)
        alone = sequential(RemoteMemory(url).retrieve, jobs)
        print(f"over HTTP, one caller alone: {alone}", flush=True)
        outs = [Path(root) / f"client{i}.json" for i in range(args.clients)]
        procs = []
        for out in outs:
            p = subprocess.Popen(
                [sys.executable, "-c", CLIENT, url, str(args.seconds), str(args.read_share), str(out), str(ROOT)],
                stdin=subprocess.PIPE,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            p.stdin.write(json.dumps(jobs).encode())  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
            procs.append(p)
        kill: dict[str, Any] = {}
        if not args.no_kill:
            time.sleep(args.seconds / 2)
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
        "entries": entries,
        "in_process": local,
        "http": http,
        "sigkill": kill,
        "git": git_state(),
        "load": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"in_process": local, "http": http, "sigkill": kill}, indent=2))


if __name__ == "__main__":
    main()

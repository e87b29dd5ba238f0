"""Text-search throughput and latency of ``zsvl serve`` with micro-batching on vs off.

For each model (the toy CLIP and ViT-B-32 with random weights) and each thread setting, two
server processes (subprocesses) load the model, build a caption index of the toy corpus with it
and serve it on 127.0.0.1: one with micro-batching (up to 64 queries per model call, 2 ms wait)
and one without (one model call per request, as clip-retrieval's back end does); one process
each, because torch's thread settings are process-wide. The
clients run in this process, not the server's (keep-alive connections driven by one asyncio
loop, so that measuring costs the shared CPU little); they send POST /search {"query", "k": 10}
with queries drawn from the toy caption corpus, at 1, 8 and 32 concurrent clients for a fixed
time each. Reports requests/s and p50/p99 latency, and per run what the server did meanwhile
(batches formed by size, model milliseconds per batch and per item, model busy seconds) and the
1-minute load average; writes ``benchmarks/results/serve.json`` and prints a table.

Usage::

    python benchmarks/bench_serve.py [--seconds 5] [--repeats 3] [--clients 1,8,32]
        [--models toy,ViT-B-32:random] [--captions 2000] [--threads auto[,2,torch]]
        [--device cpu|cuda] [--out results.json]

``--threads``: ``auto`` is what ``zsvl serve`` does (torch/FAISS threads = cores less one, every
core for batches that took >= 50 ms on those), a number N is ``zsvl serve --threads N`` (N for
every call), ``torch`` leaves torch's default (every core); give several to compare.

Each level runs ``repeats`` times, batched and unbatched interleaved, and reports the medians
(the machine's load swings would otherwise favour whichever mode ran in a quiet moment).

Target: with batching, 32 clients get >= 3x the unbatched throughput. The numbers depend on
the machine's load: clients and server share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"


# -- server process ------------------------------------------------------------------------
def serve(model: str, captions: int, folder: str, threads: str, device: str, mode: str) -> None:
    """Load ``model`` on ``device``, index ``captions`` toy captions and serve them with
    micro-batching on (``mode="batched"``) or off, with ``threads`` intra-op threads.

    One process per mode: torch's thread settings are process-wide, so two services in one
    process would change each other's."""
    import socket

    import uvicorn

    from zsvl.embed import load_model
    from zsvl.index import build_index
    from zsvl.index.recipe import resolve_corpus_path
    from zsvl.serve import BatchConfig, Service, create_app
    from zsvl.serve.server import freeze_loaded_heap
    from zsvl.serve.threads import default_threads, usable_cores

    encoder = load_model(model, device=device, num_workers=0, cache=False)  # as zsvl serve
    t0 = time.perf_counter()
    index = build_index(
        resolve_corpus_path(f"toy:{captions}"),
        encoder,
        Path(folder) / f"ix-{mode}",
        tune_queries=100,
        model=model,
    )
    build_s = time.perf_counter() - t0
    n_threads = (
        None if threads == "torch" else default_threads() if threads == "auto" else int(threads)
    )
    long_threads = usable_cores() if threads == "auto" else n_threads  # as zsvl serve
    service = Service(
        encoder,
        {"toy": index},
        model=model,
        batching=BatchConfig(enabled=mode == "batched"),
        threads=n_threads,
        long_call_threads=long_threads,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    import torch

    print(
        json.dumps(
            {
                "port": sock.getsockname()[1],
                "build_s": build_s,
                "threads": n_threads or torch.get_num_threads(),
            }
        ),
        flush=True,
    )
    freeze_loaded_heap()  # as zsvl serve does before serving
    try:  # the loop uvicorn itself picks ("auto": uvloop when installed)
        import uvloop
    except ImportError:
        asyncio.run(server.serve(sockets=[sock]))
    else:
        uvloop.run(server.serve(sockets=[sock]))


# -- clients -------------------------------------------------------------------------------
def load(port: int, queries: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` concurrent keep-alive connections sending searches for ``seconds``.

    The clients are coroutines on one event loop writing prebuilt HTTP/1.1 requests and reading
    the responses by Content-Length, so that the measurement costs the shared CPU little.
    """
    requests = [_request(port, q) for q in queries]

    async def client(c: int, stop_at: float, lat: list[float]) -> int:
        rng = random.Random(c)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        errors = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(rng.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                lat.append(time.perf_counter() - t0)
            else:
                errors += 1
        writer.close()
        return errors

    async def run() -> tuple[list[float], int, float]:
        lat: list[float] = []
        t0 = time.perf_counter()
        errors = await asyncio.gather(*(client(c, t0 + seconds, lat) for c in range(clients)))
        return lat, sum(errors), time.perf_counter() - t0

    lat, errors, elapsed = asyncio.run(run())
    lat_ms = 1000 * np.asarray(lat)
    return {
        "clients": clients,
        "requests": int(len(lat)),
        "errors": int(errors),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1),
    }


def _request(port: int, query: str) -> bytes:
    body = json.dumps({"query": query, "k": 10}).encode()
    return (
        f"POST /search HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def wait_ready(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            health(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def health(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


def measure(port: int, queries: list[str], clients: int, seconds: float) -> dict:
    """One ``load`` run plus what the server did meanwhile (batches formed, by size, with the
    model time each took) and the machine's 1-minute load average before and after."""
    before = health(port)["batching"]["search"]
    load_before = os.getloadavg()[0]
    result = load(port, queries, clients, seconds)
    after = health(port)["batching"]["search"]
    result["loadavg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["server"] = _stats_delta(before, after)
    return result


def _stats_delta(before: dict, after: dict) -> dict:
    batches = after["batches"] - before["batches"]
    items = after["items"] - before["items"]
    sizes = {}
    for label, row in after["by_size"].items():
        old = before["by_size"].get(label, {"batches": 0, "items": 0, "ms_per_batch": 0.0})
        n = row["batches"] - old["batches"]
        if n:
            ms = row["ms_per_batch"] * row["batches"] - old["ms_per_batch"] * old["batches"]
            sizes[label] = {
                "batches": n,
                "items": row["items"] - old["items"],
                "ms_per_batch": round(ms / n, 1),
                "ms_per_item": round(ms / (row["items"] - old["items"]), 1),
            }
    return {
        "batches": batches,
        "items": items,
        "mean_batch": round(items / batches, 2) if batches else 0.0,
        "model_busy_s": round(after["busy_s"] - before["busy_s"], 2),
        "by_size": sizes,
    }


def bench_model(
    model: str, threads: str, folder: str, args: argparse.Namespace, queries: list[str]
) -> list[dict]:
    procs = {
        mode: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                model,
                "--mode",
                mode,
                "--captions",
                str(args.captions),
                "--folder",
                folder,
                "--threads",
                threads,
                "--device",
                args.device,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for mode in ("batched", "unbatched")
    }
    try:
        started = {mode: json.loads(proc.stdout.readline()) for mode, proc in procs.items()}
        info = {mode: s["port"] for mode, s in started.items()}
        info["threads"] = started["batched"]["threads"]
        for mode in ("batched", "unbatched"):
            wait_ready(info[mode])
        for mode in ("batched", "unbatched"):
            load(info[mode], queries, 4, 2.0)  # warm up
        rows = []
        for clients in args.clients:
            runs = {"batched": [], "unbatched": []}
            for _ in range(args.repeats):  # interleaved, so load swings hit both modes
                for mode in runs:
                    runs[mode].append(measure(info[mode], queries, clients, args.seconds))
            for mode, results in runs.items():
                med = {
                    key: float(np.median([r[key] for r in results]))
                    for key in ("rps", "p50_ms", "p99_ms")
                }
                row = {
                    "model": model,
                    "threads": threads,
                    "torch_threads": info["threads"],
                    "batching": mode == "batched",
                    "clients": clients,
                    **med,
                    "loadavg": float(np.median([r["loadavg"][0] for r in results])),
                    "runs": results,
                }
                rows.append(row)
                mean_batch = np.median([r["server"]["mean_batch"] for r in results])
                print(
                    f"{model:<16} threads {threads}={info['threads']} {mode:<10} "
                    f"{clients:>3} clients: {med['rps']:>7.1f} req/s  p50 "
                    f"{med['p50_ms']:>7.1f} ms  p99 {med['p99_ms']:>7.1f} ms  mean batch "
                    f"{mean_batch:.1f} (median of {args.repeats}, load "
                    f"{row['loadavg']:.1f})",
                    flush=True,
                )
        return rows
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)


def _gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per level")
    parser.add_argument("--models", default="toy,ViT-B-32:random")
    parser.add_argument("--captions", type=int, default=2000)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument(
        "--threads",
        default="auto",
        help="torch/FAISS threads of the server, comma-separated settings to "
        "compare: auto (zsvl serve's default, the cores less one), torch "
        "(torch's own default, every core) or a number",
    )
    parser.add_argument("--device", default="cpu", help="the server's torch device (cpu, cuda)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="batched", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.captions, args.folder, args.threads, args.device, args.mode)
        return 0
    args.clients = [int(c) for c in args.clients.split(",")]
    from zsvl.index.recipe import resolve_corpus_path

    lines = resolve_corpus_path(f"toy:{args.captions}").read_text().splitlines()
    queries = random.Random(0).sample(lines, min(500, len(lines)))
    rows = []
    for model in args.models.split(","):
        for threads in args.threads.split(","):  # random weights differ per process: own index
            with tempfile.TemporaryDirectory() as folder:
                rows += bench_model(model, threads, folder, args, queries)
    speedups = {}
    top = max(args.clients)
    for model in args.models.split(","):
        for threads in args.threads.split(","):
            at = {
                (r["batching"], r["clients"]): r["rps"]
                for r in rows
                if r["model"] == model and r["threads"] == threads
            }
            key = f"{model} threads={threads}"
            speedups[key] = round(at[(True, top)] / at[(False, top)], 2)
            print(
                f"{key}: batching at {top} clients = {speedups[key]}x the unbatched "
                f"throughput (target >= 3x)"
            )
    from zsvl import __version__

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "serve",
                "zsvl_version": __version__,
                "seconds_per_run": args.seconds,
                "repeats": args.repeats,
                "captions": args.captions,
                "device": args.device,
                "rows": rows,
                "speedup_at_max_clients": speedups,
                "machine": {
                    "gpu": _gpu_name(args.device),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "note": "clients (this process) and server (a subprocess) share the machine's cores; "
                "loadavg: the 1-minute load average before/after each run",
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

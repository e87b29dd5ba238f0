"""Text-search throughput and latency of ``zsvl serve`` with micro-batching on vs off.

For each model (the toy CLIP and ViT-B-32 with random weights) one server process loads the
model, builds a caption index of the toy corpus with it, and serves it twice on 127.0.0.1: one
app with micro-batching (up to 64 queries per model call, 2 ms wait) and one without (one model
call per request, as clip-retrieval's back end does). Clients in this process (threads with
keep-alive HTTP connections) send POST /search {"query", "k": 10} with queries drawn from the
toy caption corpus, at 1, 8 and 32 concurrent clients for a fixed time each. Reports requests/s
and p50/p99 latency, writes ``benchmarks/results/serve.json`` and prints a table.

Usage::

    python benchmarks/bench_serve.py [--seconds 10] [--models toy,ViT-B-32:random]
        [--captions 2000] [--clients 1,8,32]

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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"


# -- server process ------------------------------------------------------------------------
def serve(model: str, captions: int, folder: str) -> None:
    """Load ``model``, index ``captions`` toy captions, serve batched + unbatched apps."""
    import socket

    import uvicorn

    from zsvl.index import build_index
    from zsvl.index.recipe import resolve_corpus_path
    from zsvl.models import load_model
    from zsvl.serve import BatchConfig, Service, create_app

    encoder = load_model(model, device="cpu", num_workers=0)
    t0 = time.perf_counter()
    index = build_index(resolve_corpus_path(f"toy:{captions}"), encoder, Path(folder) / "ix",
                        tune_queries=100, model=model)
    build_s = time.perf_counter() - t0
    servers, ports = [], []
    for enabled in (True, False):
        service = Service(encoder, {"toy": index}, model=model,
                          batching=BatchConfig(enabled=enabled))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        ports.append(sock.getsockname()[1])
        config = uvicorn.Config(create_app(service), log_level="warning", access_log=False)
        servers.append((uvicorn.Server(config), sock))
    print(json.dumps({"batched": ports[0], "unbatched": ports[1], "build_s": build_s}),
          flush=True)

    async def main() -> None:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in servers))

    try:  # the loop uvicorn itself picks ("auto": uvloop when installed)
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


# -- clients -------------------------------------------------------------------------------
def load(port: int, queries: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads sending searches for ``seconds``; requests/s and latency."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(c: int) -> None:
        rng = random.Random(c)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        while time.perf_counter() < stop_at[0]:
            body = json.dumps({"query": rng.choice(queries), "k": 10})
            t0 = time.perf_counter()
            conn.request("POST", "/search", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                latencies[c].append(time.perf_counter() - t0)
            else:
                errors[c] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = np.concatenate([np.asarray(x) for x in latencies])
    return {"clients": clients, "requests": int(len(lat)), "errors": int(sum(errors)),
            "rps": round(len(lat) / elapsed, 1),
            "p50_ms": round(1000 * float(np.percentile(lat, 50)), 1),
            "p99_ms": round(1000 * float(np.percentile(lat, 99)), 1)}


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


def bench_model(model: str, args: argparse.Namespace, queries: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", model, "--captions",
                                 str(args.captions), "--folder", folder],
                                stdout=subprocess.PIPE, text=True)
        try:
            info = json.loads(proc.stdout.readline())
            for mode in ("batched", "unbatched"):
                wait_ready(info[mode])
            rows = []
            for mode in ("batched", "unbatched"):
                port = info[mode]
                load(port, queries, 4, 2.0)  # warm up
                for clients in args.clients:
                    row = {"model": model, "batching": mode == "batched",
                           **load(port, queries, clients, args.seconds)}
                    rows.append(row)
                    print(f"{model:<16} {mode:<10} {clients:>3} clients: {row['rps']:>7.1f} "
                          f"req/s  p50 {row['p50_ms']:>7.1f} ms  p99 {row['p99_ms']:>7.1f} ms",
                          flush=True)
                rows[-1]["server_batches"] = health(port)["batching"]["search"]
            return rows
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--models", default="toy,ViT-B-32:random")
    parser.add_argument("--captions", type=int, default=2000)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.captions, args.folder)
        return 0
    args.clients = [int(c) for c in args.clients.split(",")]
    from zsvl.index.recipe import resolve_corpus_path

    lines = resolve_corpus_path(f"toy:{args.captions}").read_text().splitlines()
    queries = random.Random(0).sample(lines, min(500, len(lines)))
    rows = []
    for model in args.models.split(","):
        rows += bench_model(model, args, queries)
    speedups = {}
    for model in args.models.split(","):
        at = {(r["batching"], r["clients"]): r["rps"] for r in rows if r["model"] == model}
        top = max(args.clients)
        speedups[model] = round(at[(True, top)] / at[(False, top)], 2)
        print(f"{model}: batching at {top} clients = {speedups[model]}x the unbatched "
              f"throughput (target >= 3x)")
    from zsvl import __version__

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "serve", "zsvl_version": __version__, "seconds_per_level": args.seconds,
        "captions": args.captions, "rows": rows, "speedup_at_max_clients": speedups,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "note": "clients and server share the machine's cores"}, indent=1))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

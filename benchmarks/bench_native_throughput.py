"""Measure the native client's throughput through the emulator's data channel.

Runs the native client as a child process against the emulator (in this
process) and echoes data through a forwarded port, then repeats the copy
directly over loopback TCP for comparison. Prints MB/s (payload bytes sent
plus bytes echoed back, divided by wall time), the client process's CPU
seconds per MB and its peak resident memory.

Everything runs on 127.0.0.1. Usage:

    python benchmarks/bench_native_throughput.py --megabytes 32 --connections 4
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

from ssmex.emulator.api import Emulator, EmulatedInstance
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import EchoServer, start_session

TARGET = "i-0bench0000000000"
AGENTS = {"mux": "3.3.1142.0", "basic": "3.0.196.0"}
CLIENT_SCRIPT = """
import json, os, sys
from ssmex.datachannel.client import run_session
sys.exit(run_session(json.loads(os.environ["SSMEX_BENCH_RESPONSE"]), lambda: None))
"""
MEGABYTE = 1024 * 1024


def echo_through(port: int, size: int, *, half_close: bool) -> int:
    """Send `size` bytes to port and read the echo; return the bytes echoed back."""
    block = os.urandom(64 * 1024)
    received = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        def send() -> None:
            remaining = size
            while remaining > 0:
                chunk = block[:min(len(block), remaining)]
                connection.sendall(chunk)
                remaining -= len(chunk)
            if half_close:
                connection.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while received < size:
            chunk = connection.recv(256 * 1024)
            if not chunk:
                break
            received += len(chunk)
        sender.join(120)
    return received


def run_parallel(port: int, size: int, connections: int, *, half_close: bool) -> tuple[float, int]:
    results = [0] * connections

    def worker(index: int) -> None:
        results[index] = echo_through(port, size, half_close=half_close)

    threads = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return time.perf_counter() - started, sum(results)


def bench_native(mode: str, size: int, connections: int) -> dict:
    echo = EchoServer()
    instance = EmulatedInstance(TARGET, agent_version=AGENTS[mode], port_map={80: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    response = start_session(emulator, TARGET, "AWS-StartPortForwardingSession", {"portNumber": ["80"]})
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    environment["SSMEX_BENCH_RESPONSE"] = json.dumps(response)
    process = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = b""
        while b"opened for sessionId" not in line:
            line += process.stdout.read1(4096)
            if process.poll() is not None:
                raise RuntimeError("the native client exited before opening its port")
        port = int(re.search(rb"Port (\d+) opened", line).group(1))

        # Basic mode serves one local connection at a time.
        parallel = connections if mode == "mux" else 1
        emulator_cpu = time.process_time()
        elapsed, echoed = run_parallel(port, size, parallel, half_close=mode == "mux")
        emulator_cpu = time.process_time() - emulator_cpu

        emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLEBENCH")
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
        echo.close()

    moved = parallel * size + echoed
    return {
        "label": f"native client, {mode} mode, {parallel} connection(s)",
        "megabytes": moved / MEGABYTE,
        "seconds": elapsed,
        "client_cpu": usage.ru_utime + usage.ru_stime,
        "client_peak_rss_mb": usage.ru_maxrss / 1024,
        "emulator_cpu": emulator_cpu,
        "complete": echoed == parallel * size,
    }


def bench_direct(size: int, connections: int) -> dict:
    echo = EchoServer()
    try:
        elapsed, echoed = run_parallel(echo.port, size, connections, half_close=True)
    finally:
        echo.close()
    return {
        "label": f"direct loopback TCP, {connections} connection(s)",
        "megabytes": (connections * size + echoed) / MEGABYTE,
        "seconds": elapsed,
        "complete": echoed == connections * size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=16, help="MiB each connection sends (default 16)")
    parser.add_argument("--connections", type=int, default=4, help="parallel connections in mux mode (default 4)")
    parser.add_argument("--mode", choices=["mux", "basic", "both"], default="both")
    arguments = parser.parse_args()
    size = arguments.megabytes * MEGABYTE

    modes = ["mux", "basic"] if arguments.mode == "both" else [arguments.mode]
    results = [bench_native(mode, size, arguments.connections) for mode in modes]
    results.append(bench_direct(size, arguments.connections))

    for result in results:
        rate = result["megabytes"] / result["seconds"]
        line = f"{result['label']}: {result['megabytes']:.0f} MiB in {result['seconds']:.2f} s = {rate:.1f} MiB/s"
        if "client_cpu" in result:
            line += (f"; client CPU {result['client_cpu'] / result['megabytes'] * 1000:.1f} ms/MiB,"
                     f" client peak RSS {result['client_peak_rss_mb']:.0f} MiB,"
                     f" emulator+echo CPU {result['emulator_cpu'] / result['megabytes'] * 1000:.1f} ms/MiB")
        if not result["complete"]:
            line += " (INCOMPLETE: not every byte came back)"
        print(line)


if __name__ == "__main__":
    main()

"""Measure the native client's throughput through the emulator's data channel.

Runs the native client as a child process against the emulator (in this
process) and echoes data through a forwarded port, then repeats the copy
directly over loopback TCP for comparison. When an official
session-manager-plugin is named by SSMEX_TEST_PLUGIN or found on PATH, it
runs the same transfer through the same emulator too; it is given the
emulator's 127.0.0.1 endpoint, no KMS, no proxies and no instance metadata. Prints MB/s (payload bytes sent
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
import shutil
import socket
import subprocess
import sys
import threading
import time

from ssmex.emulator.api import Emulator, EmulatedInstance, SsmApiServer
from ssmex.emulator.datachannel import DataChannelServer
from ssmex.emulator.harness import EchoServer, start_session
from ssmex.plugin import build_launch, read_plugin

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


def official_plugin() -> str | None:
    return os.environ.get("SSMEX_TEST_PLUGIN") or shutil.which("session-manager-plugin")


def bench_native(mode: str, size: int, connections: int, plugin: str | None = None) -> dict:
    echo = EchoServer()
    instance = EmulatedInstance(TARGET, agent_version=AGENTS[mode], port_map={80: ("127.0.0.1", echo.port)})
    emulator = Emulator([instance])
    server = DataChannelServer(emulator).start()
    api = SsmApiServer(emulator)
    api.__enter__()
    parameters = {"portNumber": ["80"]}
    response = start_session(emulator, TARGET, "AWS-StartPortForwardingSession", parameters)
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    if plugin is None:
        environment["SSMEX_BENCH_RESPONSE"] = json.dumps(response)
        argv = [sys.executable, "-c", CLIENT_SCRIPT]
    else:
        # Keep the plugin on loopback: fake credentials, no instance metadata, the
        # emulator's endpoint, and a session that never requests KMS.
        assert server.kms is None
        assert api.endpoint_url.startswith("http://127.0.0.1:")
        environment.update(AWS_ACCESS_KEY_ID="AKIAEXAMPLEBENCH", AWS_SECRET_ACCESS_KEY="bench-secret",
                           AWS_EC2_METADATA_DISABLED="true")
        environment.pop("AWS_SESSION_TOKEN", None)
        environment.pop("AWS_PROFILE", None)
        request = {"Target": TARGET, "DocumentName": "AWS-StartPortForwardingSession", "Parameters": parameters}
        launch = build_launch(read_plugin(plugin), response, request, "us-east-1", None, api.endpoint_url,
                              base_environment=environment)
        argv, environment = launch.argv, launch.environment
    # Two milliseconds of ack latency, for both clients: the plugin loses an ack that
    # arrives before it buffers its own message, which only a loopback peer can do.
    server.faults.ack_delay = 0.002
    process = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = b""
        while b"opened for sessionId" not in line:
            line += process.stdout.read1(4096)
            if process.poll() is not None:
                raise RuntimeError("the native client exited before opening its port")
        port = int(re.search(rb"Port (\d+) opened", line).group(1))

        # Basic mode serves one local connection at a time. The plugin drops replies
        # still in flight once its local client half-closes, so it reads to the end.
        parallel = connections if mode == "mux" else 1
        emulator_cpu = time.process_time()
        elapsed, echoed = run_parallel(port, size, parallel, half_close=mode == "mux" and plugin is None)
        emulator_cpu = time.process_time() - emulator_cpu

        emulator.handle("TerminateSession", {"SessionId": response["SessionId"]}, "AKIAEXAMPLEBENCH")
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
        api.__exit__(None, None, None)
        echo.close()

    moved = parallel * size + echoed
    client = "native client" if plugin is None else "official plugin"
    return {
        "label": f"{client}, {mode} mode, {parallel} connection(s)",
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
    plugin = official_plugin()
    results = []
    for mode in modes:
        results.append(bench_native(mode, size, arguments.connections))
        if plugin:
            results.append(bench_native(mode, size, arguments.connections, plugin))
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

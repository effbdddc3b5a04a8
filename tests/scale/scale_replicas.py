"""`make scale-test`: three replicas of `python -m modelhubapi serve` behind HAProxy lose no
request while one is killed and another stopped, and the stopped one tells the balancer.

The deployment in miniature, on loopback: HAProxy (Debian's package) balances round robin
over the replicas, checks /api/ready every 200 ms and sends a request that a replica dropped
to another one (tests/haproxy_support.py). Four clients upload the sample photos for 40 s.
Meanwhile replica r0 is killed with SIGKILL (a crashed pod, an evicted node) and restarted;
then replica r1 gets SIGTERM (a rolling update, a scale-down) and is restarted once it has
exited. Every client request must succeed, the restarted replicas must take requests again,
and r1 must have answered /api/ready with 503 while it drained, which is how a balancer that
only probes learns to stop sending before the replica goes away.

Not named test_*.py: it takes about a minute of both cores, so the ordinary suite does not
collect it; `make scale-test` (and CI) runs it by name.
"""

from __future__ import annotations

import glob
import os
import pathlib
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import requests
from haproxy_support import HAProxy
from squeezenet_support import CONTRIB_DIR, ServerProcess, ensure_built

CLIENTS = 4
LOAD_SECONDS = 40
KILL_AT = 8  # seconds into the load
TERM_AT = 22
# Docker and the Kubernetes manifests give a stopped server this long before SIGKILL.
STOP_SECONDS = 10


@dataclass
class Tally:
    """What the clients saw: successes and every failure, described."""

    succeeded: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when the test ends early (a failed wait): the clients stop at once.
    stopped: threading.Event = field(default_factory=threading.Event)

    def record(self, failure: str | None) -> None:
        with self.lock:
            if failure is None:
                self.succeeded += 1
            else:
                self.failures.append(failure)


def _upload_until(url: str, photos: list[tuple[str, bytes]], deadline: float, tally: Tally):
    """One client: upload the photos in turn over one keep-alive connection until `deadline`
    (or the test stops early); an answer other than a 200 holding a prediction is a failure."""
    with requests.Session() as session:
        index = 0
        while time.monotonic() < deadline and not tally.stopped.is_set():
            name, body = photos[index % len(photos)]
            index += 1
            try:
                answer = session.post(
                    f"{url}/api/predict", files={"file": (name, body)}, timeout=30
                )
                ok = answer.status_code == 200 and answer.json()["output"][0]["prediction"]
                tally.record(None if ok else f"{name}: {answer.status_code} {answer.text[:200]}")
            except (requests.RequestException, ValueError, KeyError) as error:
                tally.record(f"{name}: {error!r}")


def _poll_ready_until_refused(url: str, process: subprocess.Popen, seen: list) -> None:
    """Ask `url`/api/ready, each time on a new connection as a balancer's check does, until
    it answers 503 or `process` has exited; record each status (or the error's name).

    It stops at the first 503 because the server ends its drain once no request has come in
    for a moment: asking on would keep it draining until its deadline."""
    while process.poll() is None and 503 not in seen:
        try:
            seen.append(requests.get(f"{url}/api/ready", timeout=1).status_code)
        except requests.RequestException as error:
            seen.append(type(error).__name__)
        time.sleep(0.01)


class Replicas:
    """The replicas by name, each restartable on its own port; all stopped by `stack`."""

    def __init__(self, folder: str, names: list[str], stack: ExitStack):
        self.folder = folder
        self.stack = stack
        self.starts: Counter = Counter()
        self.servers = {name: self.start(name) for name in names}

    def start(self, name: str, port: int = 0) -> ServerProcess:
        self.starts[name] += 1
        folder = os.path.join(self.folder, f"{name}-{self.starts[name]}")
        os.makedirs(folder)
        server = ServerProcess(folder, PORT=str(port))
        self.stack.callback(server.stop)
        return server

    def restart(self, name: str) -> None:
        self.servers[name] = self.start(name, self.servers[name].port)


def _wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _predictions(server: ServerProcess) -> int:
    return sum("/api/predict" in line for line in server.access_lines())


def test_replicas_killed_and_stopped_under_load_lose_no_request(tmp_path):
    ensure_built()
    photos = [
        (os.path.basename(path), pathlib.Path(path).read_bytes())
        for path in sorted(glob.glob(os.path.join(CONTRIB_DIR, "sample_data", "*.jp*g")))
    ]
    tally = Tally()
    ready_seen: list = []
    with ExitStack() as stack:
        replicas = Replicas(str(tmp_path), ["r0", "r1", "r2"], stack)
        proxy = HAProxy(str(tmp_path), {name: s.port for name, s in replicas.servers.items()})
        stack.callback(proxy.stop)
        proxy.wait_for(lambda states: set(states.values()) == {"UP"}, "every replica UP")

        start = time.monotonic()
        deadline = start + LOAD_SECONDS
        clients = [
            threading.Thread(target=_upload_until, args=(proxy.url, photos, deadline, tally))
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        stack.callback(tally.stopped.set)  # first of the clean-ups: clients, then servers

        _wait_until(start + KILL_AT)
        replicas.servers["r0"].process.send_signal(signal.SIGKILL)
        replicas.servers["r0"].process.wait(timeout=STOP_SECONDS)
        proxy.wait_until("r0", "DOWN")
        replicas.restart("r0")
        proxy.wait_until("r0", "UP")

        _wait_until(start + TERM_AT)
        stopped = replicas.servers["r1"]
        poller = threading.Thread(
            target=_poll_ready_until_refused, args=(stopped.url, stopped.process, ready_seen)
        )
        poller.start()  # already asking when the signal lands, however busy the machine
        stopped.process.send_signal(signal.SIGTERM)
        term_sent = time.monotonic()
        exit_code = stopped.process.wait(timeout=STOP_SECONDS)
        drain_seconds = time.monotonic() - term_sent
        poller.join(timeout=5)
        replicas.restart("r1")
        proxy.wait_until("r1", "UP")

        for client in clients:
            client.join(timeout=LOAD_SECONDS + 60)
        assert not any(client.is_alive() for client in clients)
        report = (
            f"{tally.succeeded} predictions, {len(tally.failures)} failed; "
            f"{proxy.redispatched()} sent again to another replica; "
            f"r1's /api/ready around SIGTERM: {list(dict.fromkeys(ready_seen))}, "
            f"exit {drain_seconds:.2f} s later\n"
            + "\n".join(line for line in proxy.log().splitlines() if "Server replicas/" in line)
        )
        print(report)
        assert tally.failures == [], report
        assert tally.succeeded > 10 * CLIENTS, report  # the load did run
        assert exit_code == 0, stopped.log()
        assert 503 in ready_seen, report
        for name in ("r0", "r1"):  # back in the pool after the restart
            assert _predictions(replicas.servers[name]) > 0, f"{name} took no request\n{report}"

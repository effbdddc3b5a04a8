"""HAProxy (Debian's `haproxy` package) as the load balancer in front of loopback replicas of
the server, for the deployment tests: round robin, health checks on /api/ready, and retries
on another replica of a request that a dying replica never answered.

Everything binds 127.0.0.1. Its admin socket (on a loopback port too, since a Unix socket
path under pytest's temporary folders can exceed the 108-byte limit) answers `show stat`,
which is how a test sees whether HAProxy counts a replica as UP or DOWN.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time

import pytest
from loopback_servers import free_port
from squeezenet_support import stop_process

# Checks every 200 ms; one failure takes a replica out, two successes bring it back.
CONFIG = """\
global
    stats socket ipv4@127.0.0.1:{admin_port} level admin
    log stderr format raw local0 info
    # Large enough to keep a whole upload, so that a request can be sent again elsewhere.
    tune.bufsize 262144

defaults
    mode http
    log global
    option httplog
    option http-buffer-request
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    # A prediction has no side effect, so a request a replica dropped can go to another.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout 503

frontend web
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /api/ready
    http-check expect status 200
    default-server check inter 200ms fall 1 rise 2
{servers}
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy")
    if not found:
        pytest.fail("haproxy is not installed (Debian: apt-get install haproxy)")
    return found


class HAProxy:
    """`haproxy` in the foreground balancing over `replicas` (name -> loopback port); its
    log (health-check changes, one line per request) in `folder`/haproxy.log."""

    def __init__(self, folder: str, replicas: dict[str, int]):
        self.port = free_port()
        self.admin_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(folder, "haproxy.log")
        config_path = os.path.join(folder, "haproxy.cfg")
        servers = "\n".join(
            f"    server {name} 127.0.0.1:{port}" for name, port in replicas.items()
        )
        with open(config_path, "w") as file:
            file.write(CONFIG.format(port=self.port, admin_port=self.admin_port, servers=servers))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [haproxy_binary(), "-db", "-f", config_path], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.wait_for(lambda states: set(states) == set(replicas), "HAProxy to start")
        except BaseException:  # the caller never gets the object to stop
            self.stop()
            raise

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as file:
            return file.read()

    def states(self) -> dict[str, str]:
        """Each replica's status as HAProxy sees it ("UP", "DOWN", "UP 1/2", ...); {} while
        HAProxy is not answering yet."""
        try:
            with socket.create_connection(("127.0.0.1", self.admin_port), timeout=2) as admin:
                admin.sendall(b"show stat\n")
                answer = b"".join(iter(lambda: admin.recv(65536), b""))
        except OSError:
            return {}
        rows = csv.DictReader(answer.decode().lstrip("# ").splitlines())
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "replicas" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def redispatched(self) -> int:
        """How many requests HAProxy had to send again (the "+N" retry count of its log)."""
        return len(re.findall(r"/\+\d+ ", self.log()))

    def wait_for(self, condition, what: str, seconds: float = 30) -> None:
        """Poll `states()` until `condition(states)` holds; fail naming `what` after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"HAProxy exited:\n{self.log()}"
            if condition(self.states()):
                return
            time.sleep(0.05)
        pytest.fail(f"waited {seconds} s for {what}; states {self.states()}\n{self.log()}")

    def wait_until(self, replica: str, status: str, seconds: float = 30) -> None:
        self.wait_for(lambda states: states.get(replica) == status, f"{replica} {status}", seconds)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

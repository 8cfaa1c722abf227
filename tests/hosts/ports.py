"""Ports for test hosts, which share the real machine's loopback network.

Each host gets an sshd port and, per Mastodon "slot" (one Mastodon
installation on the host), a web and a streaming port. The web and
streaming ports come in consecutive blocks (base + slot, as Herd places
tenants) and from below Linux's ephemeral range, so an outgoing connection
cannot take one between allocation and the moment a playbook starts the
unit that listens on it.
"""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from dataclasses import dataclass

BLOCK_RANGE = (20000, 32000)  # below net.ipv4.ip_local_port_range (32768-60999)


@dataclass(frozen=True)
class HostPorts:
    ssh: int
    web_base: int
    streaming_base: int
    slots: int

    @property
    def web(self) -> range:
        return range(self.web_base, self.web_base + self.slots)

    @property
    def streaming(self) -> range:
        return range(self.streaming_base, self.streaming_base + self.slots)


def ssh_ports(count: int) -> list[int]:
    """Distinct free ports from the kernel; sshd binds them right away."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_block(size: int, taken: set[int]) -> int:
    """The first of ``size`` consecutive free ports, none of them in ``taken``."""
    for _ in range(500):
        start = random.randrange(BLOCK_RANGE[0], BLOCK_RANGE[1] - size)
        block = range(start, start + size)
        if not taken.intersection(block) and all(is_free(p) for p in block):
            taken.update(block)
            return start
    raise RuntimeError(f"no {size} consecutive free ports in {BLOCK_RANGE}")


def allocate(count: int, slots: int = 1) -> list[HostPorts]:
    taken: set[int] = set()
    return [
        HostPorts(ssh, free_block(slots, taken), free_block(slots, taken), slots)
        for ssh in ssh_ports(count)
    ]

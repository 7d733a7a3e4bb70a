"""Whether a TCP port is free: `heaters web` and `heaters up` check theirs before starting, and the local
servers (heaters.devstack) check every port they are about to bind."""

from __future__ import annotations

import socket


def port_in_use(host: str, port: int) -> bool:
    """True if something holds ``port`` on ``host`` or on the wildcard address.

    A bind test rather than a connect test: it also sees sockets that are bound but not yet listening,
    and it checks 0.0.0.0 because a wildcard listener blocks a 127.0.0.1 bind (weed checks both too).
    """
    for address in dict.fromkeys((host, "0.0.0.0")):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return True
    return False

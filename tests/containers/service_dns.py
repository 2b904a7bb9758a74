"""A tiny DNS server on the loopback, standing in for Docker's embedded DNS (127.0.0.11).

Like Docker's, it answers a service name with the address of every running replica; a
test changes that set while the load balancer runs, as ``--scale`` and crashes do.
"""

from __future__ import annotations

import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL_S = 1


class ServiceDns:
    """Answers ``A`` queries for ``name`` with ``addresses``; everything else is NXDOMAIN."""

    def __init__(self, name: str) -> None:
        self.name = name.rstrip(".").lower()
        self.addresses: list[str] = []
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="service-dns", daemon=True)

    def set_addresses(self, addresses: list[str]) -> None:
        with self._lock:
            self.addresses = list(addresses)

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        if question.name.to_text(omit_final_dot=True).lower() != self.name:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            with self._lock:
                addresses = list(self.addresses)
            if addresses:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, TTL_S, dns.rdataclass.IN, dns.rdatatype.A, addresses,
                ))
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._socket.sendto(self._answer(wire), client)
            except (dns.exception.DNSException, OSError, IndexError):
                continue  # a malformed query gets no answer, as from a real server

    def __enter__(self) -> ServiceDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._socket.close()

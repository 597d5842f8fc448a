"""A tiny authoritative DNS responder on loopback (UDP, dnspython) for RFC 3263 lookup tests.

    with DNSServer({("example.test", "NAPTR"): ['10 50 "s" "SIP+D2T" "" _sip._tcp.example.test.'], ...}) as dns:
        DNSLookup([f"127.0.0.1:{dns.port}"])

Records are given per (name, type) as zone-file rdata text; everything else is NXDOMAIN. ``queries`` lists
what was asked, so a test can assert that a lookup was skipped.
"""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DNSServer:
    """Answers from records {(name, rdtype): [rdata text, ...]} on 127.0.0.1:port until stopped."""

    def __init__(self, records: dict[tuple[str, str], list[str]], port: int = 0) -> None:
        self.records = {(name.rstrip(".").lower(), rdtype.upper()): values
                        for (name, rdtype), values in records.items()}
        self.queries: list[tuple[str, str]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", port))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DNSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join(2)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            response.flags |= 0x0400  # AA
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            values = self.records.get((name, rdtype))
            if values:
                rrset = dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, values)
                response.answer.append(rrset)
            elif not any(known == name for known, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._socket.sendto(response.to_wire(), peer)


if __name__ == "__main__":  # inside a network namespace: `python -m tests.support.dns PORT 'JSON records'`
    import json
    import sys
    import time

    table = {tuple(key.split(" ", 1)): values for key, values in json.loads(sys.argv[2]).items()}
    with DNSServer(table, int(sys.argv[1])):  # type: ignore[arg-type]
        print("ready", flush=True)
        while True:
            time.sleep(3600)

"""RFC 3263 server location: NAPTR -> SRV -> A with dnspython (pjsip has no NAPTR).

``DNSLookup.lookup_sip_proxy(uri)`` returns the ordered list of ``Route`` objects to try. An IP literal, or a URI
with an explicit port, skips the NAPTR/SRV steps as the RFC says. The lookups block: call them off the loop
(``loop.run_in_executor``). dnspython is imported only when a name really has to be resolved.
"""

from __future__ import annotations

from typing import Any

from sipcli.uri import DEFAULT_PORTS, SIPURI, TRANSPORTS, Route, is_ip_address

__all__ = ["DNSLookup", "DNSLookupError"]

_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIXES = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}


class DNSLookupError(Exception):
    """No route could be found for a host; the message says which lookups failed."""


def _split_nameserver(text: str) -> tuple[str, int]:
    """'ip' or 'ip:port' or '[ipv6]:port' -> (ip, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


class DNSLookup:
    """Resolves SIP URIs to routes; nameservers are 'ip' or 'ip:port' (default: the system's resolv.conf)."""

    def __init__(self, nameservers: list[str] | None = None, timeout: float = 3.0) -> None:
        self.nameservers = list(nameservers or [])
        self.timeout = timeout
        self._resolver: Any = None
        self._missing: dict[str, str] = {}  # name -> why its last query had no answer (for error messages)

    @property
    def resolver(self) -> Any:
        if self._resolver is None:
            import dns.resolver

            if self.nameservers:
                resolver = dns.resolver.Resolver(configure=False)
                servers = [_split_nameserver(server) for server in self.nameservers]
                resolver.nameservers = [host for host, _ in servers]
                resolver.nameserver_ports = dict(servers)
            else:
                resolver = dns.resolver.Resolver()
            resolver.lifetime = self.timeout
            resolver.cache = dns.resolver.Cache()
            self._resolver = resolver
        return self._resolver

    def lookup_sip_proxy(self, uri: SIPURI | str, supported: tuple[str, ...] = TRANSPORTS) -> list[Route]:
        """The routes for uri in the order to try them; DNSLookupError when there are none."""
        if isinstance(uri, str):
            uri = SIPURI.parse(uri)
        host = uri.host.strip("[]")
        explicit = uri.parameters.get("transport") or ("tls" if uri.secure else None)
        if explicit is not None and explicit not in supported:
            raise DNSLookupError(f"transport {explicit} is not enabled")
        if uri.secure:
            supported = ("tls",)
        if is_ip_address(host):
            transport = explicit or ("udp" if "udp" in supported else supported[0])
            return [Route(host, uri.port or DEFAULT_PORTS[transport], transport)]
        if uri.port is not None:
            transport = explicit or ("udp" if "udp" in supported else supported[0])
            return [Route(address, uri.port, transport) for address in self._a(host)]
        if explicit is not None:
            routes = self._srv(host, explicit)
            return routes or [Route(address, DEFAULT_PORTS[explicit], explicit) for address in self._a(host)]
        routes = self._naptr(host, supported)
        if not routes:
            for transport in supported:
                routes.extend(self._srv(host, transport))
        if not routes:
            transport = "udp" if "udp" in supported else supported[0]
            routes = [Route(address, DEFAULT_PORTS[transport], transport) for address in self._a(host)]
        if not routes:
            raise DNSLookupError(f"no NAPTR, SRV or A records for {host}")
        return routes

    def _query(self, name: str, rdtype: str) -> list:
        import dns.exception
        import dns.resolver

        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except dns.resolver.NXDOMAIN:
            self._missing[name] = "NXDOMAIN"
        except dns.resolver.NoAnswer:
            self._missing[name] = f"no {rdtype} record"
        except dns.resolver.NoNameservers:
            self._missing[name] = "no DNS server answered (SERVFAIL or refused)"
        except dns.exception.Timeout:
            raise DNSLookupError(f"DNS {rdtype} lookup for {name} timed out") from None
        return []

    def _a(self, host: str) -> list[str]:
        addresses = [record.address for record in self._query(host, "A")]
        if not addresses:
            raise DNSLookupError(f"{host}: {self._missing.get(host, 'no A record')}")
        return addresses

    def _srv(self, name: str, transport: str, full_name: str | None = None) -> list[Route]:
        records = self._query(full_name or f"{_SRV_PREFIXES[transport]}.{name}", "SRV")
        records.sort(key=lambda record: (record.priority, -record.weight))
        routes: list[Route] = []
        for record in records:
            target = record.target.to_text(omit_final_dot=True)
            if target == "":  # "." means: the service is not offered here
                continue
            try:
                addresses = [target] if is_ip_address(target) else self._a(target)
            except DNSLookupError:
                continue
            routes.extend(Route(address, record.port, transport) for address in addresses)
        return routes

    def _naptr(self, host: str, supported: tuple[str, ...]) -> list[Route]:
        records = [record for record in self._query(host, "NAPTR")
                   if record.flags.decode().lower() == "s"
                   and _NAPTR_SERVICES.get(record.service.decode().upper()) in supported]
        records.sort(key=lambda record: (record.order, record.preference))
        routes: list[Route] = []
        for record in records:
            transport = _NAPTR_SERVICES[record.service.decode().upper()]
            routes.extend(self._srv(host, transport, record.replacement.to_text(omit_final_dot=True)))
        return routes

"""MSRP (RFC 4975) with relays (RFC 4976) and connection direction from a=setup (RFC 6135).

The protocol is sans-IO (bytes and events in, bytes and events out; no asyncio, no sockets, which
tests/sipcli/msrp/test_sans_io.py checks): ``uri`` (MSRPURI), ``message`` (MSRPFrame), ``parser``
(MSRPParser), ``connection`` (MSRPConnection and its events), ``relay`` (the RFC 4976 RelayClient) and ``sdp``
(MessageMedia, answer_setup, connection_role). ``aio`` drives them with asyncio: MSRPTransport,
open_transport, MSRPListener, MSRPDispatcher and connect_relay. CPIM wrapping lives in ``sipcli.cpim``.
"""

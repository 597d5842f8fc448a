"""MSRP (RFC 4975) with relays (RFC 4976) and connection direction from a=setup (RFC 6135).

Modules: ``uri`` (MSRPURI), ``message`` (MSRPFrame), ``parser`` (MSRPParser), ``connection`` (the sans-IO
MSRPConnection and its events), ``transport`` (asyncio: open_transport, MSRPListener, MSRPTransport),
``relay`` (RelayClient, connect_relay) and ``sdp`` (MessageMedia, answer_setup, connection_role).
CPIM wrapping lives in ``sipcli.cpim``.
"""

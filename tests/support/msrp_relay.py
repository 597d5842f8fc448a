"""A kamailio MSRP relay (RFC 4976, module msrp.so) on loopback, with digest AUTH against an htable.

Uses the lead's generic launcher (tests.support.kamailio.start_kamailio). Pitfalls handled here: the msrp
module needs tcp_accept_no_cl, a TCP listener and an event_route[msrp:frame-in]; the Expires check is written
so that an acceptable value passes (the module README's version answers 423 always). The Use-Path session is
derived from the client's From-Path URI (prevhop), so a re-AUTH gets the same Use-Path.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.kamailio import MODULES_DIR, USERS, Kamailio, start_kamailio
from tests.support.ports import free_port

MIN_EXPIRES = 2
MAX_EXPIRES = 3600


def relay_config(k: Kamailio) -> str:
    seeds = "".join(f'    $sht(u=>{name}) = "{password}";\n' for name, password in k.users.items())
    return f"""#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=2
dns=no
rev_dns=no
use_dns_cache=no
auto_aliases=no
tcp_accept_no_cl=yes
listen=udp:127.0.0.1:{k.udp_port}
listen=tcp:127.0.0.1:{k.tcp_port}
mpath="{MODULES_DIR}/"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "auth.so"
loadmodule "cfgutils.so"
loadmodule "msrp.so"
modparam("htable", "htable", "u=>size=4;")
modparam("htable", "htable", "msrp=>size=8;autoexpire={MAX_EXPIRES + 5};")

event_route[htable:mod-init] {{
{seeds}}}

request_route {{
    sl_send_reply("403", "MSRP relay only");
    exit;
}}

event_route[msrp:frame-in] {{
    msrp_reply_flags("1");
    if (msrp_is_reply()) {{
        msrp_relay();
        exit;
    }}
    if ($msrp(method) == "AUTH") {{
        if ($msrp(nexthops) > 0) {{ msrp_relay(); exit; }}
        if ($au == $null || $sht(u=>$au) == $null
                || !pv_www_authenticate("{k.domain}", "$sht(u=>$au)", "0", "$msrp(method)")) {{
            if (auth_get_www_authenticate("{k.domain}", "0", "$var(challenge)")) {{
                msrp_reply("401", "Unauthorized", "$var(challenge)");
            }} else {{
                msrp_reply("500", "Server Error");
            }}
            exit;
        }}
        $var(expires) = {MAX_EXPIRES};
        if ($hdr(Expires) != $null) {{
            $var(expires) = $(hdr(Expires){{s.int}});
            if ($var(expires) < {MIN_EXPIRES}) {{
                msrp_reply("423", "Interval Out-of-Bounds", "Min-Expires: {MIN_EXPIRES}\\r\\n");
                exit;
            }}
            if ($var(expires) > {MAX_EXPIRES}) {{
                msrp_reply("423", "Interval Out-of-Bounds", "Max-Expires: {MAX_EXPIRES}\\r\\n");
                exit;
            }}
        }}
        $var(sessid) = "s" + $(msrp(prevhop){{s.md5}});
        $sht(msrp=>$var(sessid)::srcaddr) = $msrp(srcaddr);
        $sht(msrp=>$var(sessid)::srcsock) = $msrp(srcsock);
        $var(hdrs) = "Use-Path: msrp://127.0.0.1:{k.tcp_port}/" + $var(sessid) + ";tcp\\r\\nExpires: "
            + $var(expires) + "\\r\\n";
        xlog("L_INFO", "msrp AUTH ok for $au: $var(sessid)\\n");
        msrp_reply("200", "OK", "$var(hdrs)");
        exit;
    }}
    if ($msrp(method) == "SEND" || $msrp(method) == "REPORT") {{
        if ($msrp(nexthops) > 1) {{
            if ($msrp(method) == "SEND") {{ msrp_reply("200", "OK"); }}
            msrp_relay();
            exit;
        }}
        $var(sessid) = $msrp(sessid);
        if ($sht(msrp=>$var(sessid)::srcaddr) == $null) {{
            msrp_reply("481", "Session-does-not-exist");
            exit;
        }}
        if ($msrp(method) == "SEND") {{ msrp_reply("200", "OK"); }}
        msrp_relay_flags("1");
        msrp_set_dst("$sht(msrp=>$var(sessid)::srcaddr)", "$sht(msrp=>$var(sessid)::srcsock)");
        msrp_relay();
        exit;
    }}
    msrp_reply("501", "Request-method-not-understood");
}}
"""


def msrp_relay(workdir: Path) -> Kamailio:
    """Start a kamailio MSRP relay on free loopback ports; MSRP runs on `k.tcp_port`."""
    k = Kamailio(workdir, free_port(), free_port("tcp"), None, dict(USERS))
    return start_kamailio(workdir, relay_config(k), k)

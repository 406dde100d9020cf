# What the seed labs share (lab/seed-lab, lab/ovn-lab): the router's FRR with the seed's
# frr.conf, the server, and the ways to ask them. Sourced with P (the namespaces' prefix) and
# RUN (the lab's directory) set.

x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# The server, logging clients on 80 and 8080, with a 10 MB file to download, and a UDP echo
# service on 9999 answering in upper case.
start_server() {
    mkdir -p "$RUN/www"
    head -c 10485760 /dev/urandom >"$RUN/www/10MB.bin"
    for port in 80 8080; do
        ip netns exec "$P-server" python3 -m http.server "$port" --bind 192.168.55.13 --directory "$RUN/www" >"$RUN/http-$port.log" 2>&1 &
        echo $! >"$RUN/http-$port.pid"
    done
    # Ready means listening: a request sent earlier would be refused by the server's kernel.
    for port in 80 8080; do
        for _ in $(seq 100); do [ -n "$(x "$P-server" ss -Hltn "sport = :$port")" ] && break; sleep 0.1; done
    done
    ip netns exec "$P-server" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.168.55.13', 9999))
while True:
    data, peer = s.recvfrom(2048)
    print(peer[0], flush=True)
    s.sendto(data.upper(), peer)
" >"$RUN/udp-echo.log" 2>&1 &
}

# FRR on the router with the seed's frr.conf (section 1.2, verbatim), or with the bgpd
# configuration in file $1 (and bfdd's in file $2).
start_frr() {
    local d=$RUN/frr
    mkdir -p "$d"
    if [ -n "${1:-}" ]; then
        cp "$1" "$d/bgpd.conf"
    else
        seed_frr_conf >"$d/bgpd.conf"
    fi
    : >"$d/zebra.conf"
    chown -R frr:frr "$d"
    local c=(-d -P 0 --vty_socket "$d" -z "$d/zserv.api")
    x "$P-router" /usr/lib/frr/zebra "${c[@]}" -f "$d/zebra.conf" -i "$d/zebra.pid" 2>"$d/zebra.err"
    for _ in $(seq 100); do [ -S "$d/zserv.api" ] && break; sleep 0.1; done
    # bfdd (before bgpd, which registers its peers with it) where the configuration asks.
    if grep -q ' bfd' "$d/bgpd.conf"; then
        if [ -n "${2:-}" ]; then cp "$2" "$d/bfdd.conf"; else : >"$d/bfdd.conf"; fi
        chown frr:frr "$d/bfdd.conf"
        x "$P-router" /usr/lib/frr/bfdd "${c[@]}" -f "$d/bfdd.conf" -i "$d/bfdd.pid" --bfdctl "$d/bfdd.sock" 2>"$d/bfdd.err"
    fi
    x "$P-router" /usr/lib/frr/bgpd "${c[@]}" -f "$d/bgpd.conf" -i "$d/bgpd.pid" 2>"$d/bgpd.err"
}

seed_frr_conf() {
    cat <<'FRR'
frr defaults traditional
log syslog informational
no ipv6 forwarding
!
router bgp 64512
bgp router-id 192.168.99.12
! Configure iBGP neighbors for each OCP cluster node
neighbor 192.168.99.23 remote-as 64512
neighbor 192.168.99.24 remote-as 64512
neighbor 192.168.99.25 remote-as 64512
! Configure iBGP ECMP and network advertisement within the address-family
address-family ipv4 unicast
network 192.168.55.0/24
maximum-paths ibgp 4
exit-address-family
!
line vty
!
FRR
}

vtysh_router() { vtysh --vty_socket "$RUN/frr" "$@"; }

ctl() { "${EGRESSCTL:-target/release/egressctl}" -s "$RUN/egressgw.sock" "$@"; }

# The steering program's count of one verdict on master-01's uplink.
steering_count() { ctl stats | awk -v v="$1" '$2 == v { n += $3 } END { print n + 0 }'; }

# Waits (bounded, 30 s) until the router's kernel has a BGP route to $1.
wait_route() {
    for _ in $(seq 300); do
        ip -n "$P-router" route show "$1" proto bgp | grep -q "via 192.168.99.23" && return 0
        sleep 0.1
    done
    echo "FAIL: the router learned no BGP route to $1" >&2
    vtysh_router -c 'show bgp summary' >&2 || true
    return 1
}


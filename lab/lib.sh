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
    data, peer = s.recvfrom(65535)
    print(peer[0], flush=True)
    s.sendto(data.upper(), peer)
" >"$RUN/udp-echo.log" 2>&1 &
}

# The server's IPv6 side (dual stack): a web server on [fd00:55::13]:80 logging its clients,
# serving the same files.
start_server6() {
    ip netns exec "$P-server" python3 -m http.server 80 --bind fd00:55::13 --directory "$RUN/www" >"$RUN/http6-80.log" 2>&1 &
    echo $! >"$RUN/http6-80.pid"
    for _ in $(seq 100); do [ -n "$(x "$P-server" ss -Hltn "sport = :80 and src [fd00:55::13]")" ] && break; sleep 0.1; done
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

# The seed's frr.conf made dual-stack: IPv6 forwarding on, and master-01 and master-02 as
# IPv6 neighbours of their own (the seed's `disableMP: true`: one session per family) for the
# IPv6 unicast family, in which the router announces the server's IPv6 network.
seed_frr_conf_dual_stack() {
    seed_frr_conf | sed 's/^no ipv6 forwarding$/ipv6 forwarding/' | awk '
        /^neighbor 192.168.99.25 / {
            print
            print "neighbor fd00:99::23 remote-as 64512"
            print "neighbor fd00:99::24 remote-as 64512"
            next
        }
        /^exit-address-family$/ && !done {
            print
            print "address-family ipv6 unicast"
            print "network fd00:55::/64"
            print "neighbor fd00:99::23 activate"
            print "neighbor fd00:99::24 activate"
            print "maximum-paths ibgp 4"
            print "exit-address-family"
            done = 1
            next
        }
        { print }'
}

vtysh_router() { vtysh --vty_socket "$RUN/frr" "$@"; }

ctl() { "${EGRESSCTL:-target/release/egressctl}" -s "$RUN/egressgw.sock" "$@"; }

# The steering program's count of one verdict on master-01's uplink.
steering_count() { ctl stats | awk -v v="$1" '$2 == v { n += $3 } END { print n + 0 }'; }

# Waits (bounded, 30 s) until the router's kernel has a BGP route to $1 (IPv4 or IPv6) via
# master-01 (a static one under ROUTER=static, seed-lab's router without FRR).
wait_route() {
    local via="via 192.168.99.23" family=-4 proto=bgp
    case "$1" in *:*) via="via fd00:99::23"; family=-6 ;; esac
    [ "${ROUTER:-frr}" = static ] && proto=static
    for _ in $(seq 300); do
        ip "$family" -n "$P-router" route show "$1" proto "$proto" | grep -q "$via" && return 0
        sleep 0.1
    done
    echo "FAIL: the router learned no BGP route to $1" >&2
    vtysh_router -c 'show bgp summary' >&2 || true
    return 1
}


# lab/flows.py's traffic through the gateways (lab/ha-lab, lab/ovn-lab failover): FLOWS TCP
# connections (default 200) each sending a line every INTERVAL s (1.0) and timing its echo,
# DOWNLOADS long downloads (10, 320 KB/s each), IDLE idle connections with TCP keepalives
# every second (20) that speak once at the end, UDP_FLOWS UDP flows (20), NEW_RATE short
# connections a second (10), and LATE long-lived flows more at each flows_burst. The server
# is FLOWS_SERVER (192.168.55.13) and the flows must reach it from FLOWS_EGRESS
# (192.168.66.100): a lab sets both to IPv6 addresses for IPv6 flows.
FLOWS=${FLOWS:-200}
DOWNLOADS=${DOWNLOADS:-10}
IDLE=${IDLE:-20}
UDP_FLOWS=${UDP_FLOWS:-20}
NEW_RATE=${NEW_RATE:-10}
INTERVAL=${INTERVAL:-1.0}
LATE=${LATE:-0}
FLOWS_SERVER=${FLOWS_SERVER:-192.168.55.13}
FLOWS_EGRESS=${FLOWS_EGRESS:-192.168.66.100}

flows_what() {
    echo "$FLOWS TCP flows, $DOWNLOADS downloads, $IDLE idle connections, $UDP_FLOWS UDP flows, $NEW_RATE new connections a second"
}

# The server side on the server FLOWS_SERVER: echo on TCP 7000, downloads on 7001, UDP echo
# on 7002.
flows_serve() {
    ip netns exec "$P-server" python3 lab/flows.py serve "$FLOWS_SERVER" 7000 >"$RUN/flows-server.log" 2>&1 &
    for _ in $(seq 100); do grep -q ready "$RUN/flows-server.log" 2>/dev/null && break; sleep 0.1; done
}

# Starts the client in namespace $1 from address $2, and returns once every connection is
# made (bounded: 60 s) and a few rounds of messages went by.
flows_start() {
    local ns=$1 src=$2 want=$((FLOWS + DOWNLOADS + IDLE))
    FLOWS_BASE=()
    local what
    for what in accept reset udp-source-changed; do
        FLOWS_BASE+=("$(grep -c "^$what" "$RUN/flows-server.log" || true)")
    done
    ip netns exec "$ns" python3 lab/flows.py client "$src" "$FLOWS_SERVER" 7000 \
        --tcp "$FLOWS" --udp "$UDP_FLOWS" --new "$NEW_RATE" --interval "$INTERVAL" --seconds 900 \
        --burst "$LATE" --download "$DOWNLOADS" --idle "$IDLE" \
        >"$RUN/flows.json" 2>"$RUN/flows.err" &
    FLOWS_CLIENT=$!
    for _ in $(seq 600); do
        [ "$(($(grep -c '^accept' "$RUN/flows-server.log") - FLOWS_BASE[0]))" -ge "$want" ] && break
        sleep 0.1
    done
    sleep 3
}

# LATE more long-lived flows, now (just before a kill).
flows_burst() { kill -USR1 "$FLOWS_CLIENT"; }

# Stops the client and prints what the flows and the server saw; fails on a connection
# broken or not made, a reset, a source other than the egress IP, a UDP flow seen from a new
# port, or a flow or download that stood still over 1.5 s (the goal is 1 s at most).
flows_finish() {
    # The server's word first: the client's exit resets connections with unread echoes,
    # which is not the gateways' doing.
    local accepted resets moved foreign
    accepted=$(($(grep -c '^accept' "$RUN/flows-server.log" || true) - FLOWS_BASE[0]))
    resets=$(($(grep -c '^reset' "$RUN/flows-server.log" || true) - FLOWS_BASE[1]))
    moved=$(($(grep -c '^udp-source-changed' "$RUN/flows-server.log" || true) - FLOWS_BASE[2]))
    foreign=$(awk -v e="$FLOWS_EGRESS" '$1 == "accept" && $2 != e { n++ } END { print n + 0 }' "$RUN/flows-server.log")
    kill -INT "$FLOWS_CLIENT"
    wait "$FLOWS_CLIENT" || true
    echo "== the flows (lab/flows.py)"
    cat "$RUN/flows.json"
    echo "server: $accepted connections accepted, $resets reset, $foreign from another address than $FLOWS_EGRESS, $moved UDP flows seen from a new source port"
    python3 - "$RUN/flows.json" "$resets" "$foreign" "$moved" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
resets, foreign, moved = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
bad = []
for kind in ('tcp', 'download', 'idle'):
    if r[kind + '_broken']:
        bad.append('%d %s connections broken: %s' % (r[kind + '_broken'], kind, r['tcp_broken_reasons']))
    if r[kind + '_connected'] != r[kind + '_flows']:
        bad.append('%d of %d %s flows connected' % (r[kind + '_connected'], r[kind + '_flows'], kind))
if resets or foreign or moved:
    bad.append('server saw %d resets, %d foreign sources, %d UDP flows from a new port' % (resets, foreign, moved))
# A flow the surviving gateway could not carry hangs until the end: at least the 2 s after
# the last event.
if r['stall_max_ms'] > 1500:
    bad.append('a flow waited %.0f ms for an echo (goal: 1 s at most)' % r['stall_max_ms'])
if r['download_stall_max_ms'] > 1500:
    bad.append('a download stood still %.0f ms (goal: 1 s at most)' % r['download_stall_max_ms'])
for b in bad:
    print('FAIL:', b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# The router's ($P-router) BGP next hops for the egress IP of family $1 (FAMILY's, else 4,
# by default), space-separated as the gateways' IPv4 addresses: fd00:99::N reads as
# 192.168.99.N (the failover labs' gateways).
next_hops() {
    if [ "${1:-${FAMILY:-4}}" = 6 ]; then
        ip -n "$P-router" -6 route show fd00:66::100 proto bgp |
            grep -oE 'via fd00:99::[0-9]+' | sed 's/via fd00:99::/192.168.99./'
    else
        ip -n "$P-router" route show 192.168.66.100 proto bgp |
            grep -oE 'via 192\.168\.99\.[0-9]+' | awk '{ print $2 }'
    fi | sort | tr '\n' ' '
}

# sessions_from_m03_over_ipv6 ID POD [ALSO]: on gateway ID of a set on the IPv6 underlay,
# prints how many of POD's sessions (replicas included) name each node, and fails unless
# some name master-03 by its IPv6 address (fd00:99::25) and the rest name it too, or a node
# whose address matches the regex ALSO (on real OVN, a gateway node's own OVN relays the
# pod's packets to the survivor for the few ms its gateway is dead and still rerouted to).
sessions_from_m03_over_ipv6() {
    local nodes also=${3:-fd00:99::25}
    nodes=$("$EGRESSCTL" -s "$RUN/gw$1.sock" -o json sessions --pod "$2" --limit 100000 |
        grep -oE '"node": *"[^"]*"' | sort | uniq -c | awk '{ printf "%s %s; ", $1, $3 }')
    echo "gw$1: sessions by the pod's node: $nodes"
    local others
    others=$(grep -oE '"[^"]*"' <<<"$nodes" | tr -d '"' | grep -vxE "fd00:99::25|$also" || true)
    [[ $nodes == *'"fd00:99::25";'* ]] && [ -z "$others" ] && return 0
    echo "FAIL: gw$1 holds no sessions of fd00:99::25, or some of a node other than it${3:+ or $3}: $nodes" >&2
    return 1
}

# Every gateway's metrics: master-01's, or each namespace METRIC_NS names (a gateway set).
metrics_text() {
    local ns
    for ns in ${METRIC_NS:-$P-m01}; do x "$ns" curl -sS http://127.0.0.1:9469/metrics; done
}

# A metric's value, all its series together (all workers, all gateways).
metric() {
    metrics_text | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { n += $2 } END { print n + 0 }'
}

# A drop reason's count, all workers and gateways together, from the metrics.
drops() {
    metrics_text |
        awk -v r="reason=\"$1\"" 'index($0, "egressgw_drops_total{") == 1 && index($0, r) { n += $2 } END { print n + 0 }'
}

# IPv4 fragments both ways, from the pod in namespace $1 (bound to address $2 where it has
# others): it sends 3000 bytes of UDP (its stack cuts them for its 1400-byte interface), the
# server answers them in upper case (its stack cuts for 1500), and master-01's gateway cuts
# each 1500-byte fragment again to fit the tunnel back; the pod's stack puts the answer
# together, and a datagram counts only whole and right. Then a ping of 3000 bytes. In a
# gateway set (METRIC_NS), a reply's fragments may reach the member without the session: they
# follow their first to its owner.
check_fragments() {
    local ns=$1 bind=${2:-} ok=0 before after cut pinged
    before=$(metric egressgw_fragments_translated_total)
    echo "== 3000 bytes of UDP each way, in fragments"
    x "$ns" python3 -c "
import socket, sys
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind(('$bind', 0))
c.settimeout(1)
body = bytes(b'abcdefghijklmnopqrstuvwxyz'[i % 26] for i in range(3000))
for _ in range(5):
    c.sendto(body, ('192.168.55.13', 9999))
    try:
        got = c.recv(65535)
    except socket.timeout:
        continue
    print('answer:', len(got), 'bytes,', 'in upper case' if got == body.upper() else 'WRONG')
    sys.exit(0 if got == body.upper() else 1)
print('no answer')
sys.exit(1)
" || { echo "FAIL: the fragmented UDP exchange" >&2; ok=1; }
    echo "== ping -s 3000 from the pod (echo request and reply in fragments)"
    pinged=$(x "$ns" ping -c 2 -W 2 -s 3000 ${bind:+-I "$bind"} 192.168.55.13) || { echo "FAIL: ping -s 3000" >&2; ok=1; }
    echo "$pinged" | grep "packets transmitted" || true
    after=$(metric egressgw_fragments_translated_total)
    cut=$(metric egressgw_replies_fragmented_total)
    echo "fragments translated: $((after - before)); replies cut to fit the tunnel: $cut; later fragments with no first: $(drops fragment_no_first)"
    # The UDP datagrams' three fragments each way and the pings' (two), and the answers'
    # full fragments cut.
    [ $((after - before)) -ge 18 ] && [ "$cut" -ge 2 ] || { echo "FAIL: the fragments did not go through the dataplane" >&2; ok=1; }
    return $ok
}

#!/usr/bin/env python3
"""A pod node, as OVN-Kubernetes would be for egress: packets the pod sends (read from a TUN
device) go inside Geneve (VNI 0xff0003, OVN option, OVN's transit MACs) to the node that owns
their destination's pod subnet, or else to the egress node; Geneve arriving from any node is
unwrapped and written back to the TUN device. On master-01 it stands in for the node's own
OVS: whatever egressgw's steering program leaves to the node arrives here.

usage: podnode.py TUN NODE_IP EGRESS_NODE_IP [SUBNET=NODE_IP ...] [--log FILE] [--egress-file FILE]
With --log, every Geneve datagram received is appended to FILE as one line of hex. With
--egress-file, SIGHUP makes the egress node the address FILE holds (the failover lab moves the
serving host so, standing in for OVN updating its reroute policy).
Runs until killed; carries IPv4 and IPv6 inside Geneve over the IPv4 underlay (a dual-stack
cluster), or over the IPv6 underlay when NODE_IP is an IPv6 address (a single-stack IPv6
cluster's overlay; the kernel checksums the outer UDP and checks it on the way back). IPv6 to link-local or multicast addresses (neighbour discovery, MLD)
stays on the pod's node, as OVN answers it there.
"""
import fcntl, ipaddress, os, select, socket, struct, sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

args = sys.argv[1:]
log = None
if '--log' in args:
    i = args.index('--log')
    log = open(args[i + 1], 'a', buffering=1)
    del args[i:i + 2]
egress_file = None
if '--egress-file' in args:
    i = args.index('--egress-file')
    egress_file = args[i + 1]
    del args[i:i + 2]
tun_name, node_ip, egress_node = args[:3]
routes = []
for r in args[3:]:
    net, via = r.split('=')
    routes.append((ipaddress.ip_network(net), via))
tun = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', tun_name.encode(), IFF_TUN | IFF_NO_PI))

# Geneve header as OVN sends it between transit switch ports: version 0, 2 option words,
# critical flag, Ethernet payload, VNI 0xff0003, option 0102/80 with ingress key 2, egress 4.
GENEVE = bytes.fromhex('02406558' 'ff000300' '01028001' '00020004')
INNER_MACS = bytes.fromhex('0a5864580004' '0a5864580002')
ETHERTYPE = {4: b'\x08\x00', 6: b'\x86\xdd'}


def tunnel_to(packet):
    dst = ipaddress.ip_address(packet[16:20] if packet[0] >> 4 == 4 else packet[24:40])
    for net, via in routes:
        if dst in net:
            return via
    return egress_node


def move_egress(*_):
    global egress_node
    with open(egress_file) as f:
        egress_node = f.read().strip()


if egress_file:
    import signal
    signal.signal(signal.SIGHUP, move_egress)


family = socket.AF_INET6 if ':' in node_ip else socket.AF_INET
sock = socket.socket(family, socket.SOCK_DGRAM)
# Bursts of replies (downloads) outrun one Python loop: room for a few thousand frames, so
# the stand-in for OVN loses none of them (SO_RCVBUFFORCE = 33, root only; else the cap).
try:
    sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
except OSError:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind((node_ip, 6081))
print('podnode ready', flush=True)
while True:
    ready, _, _ = select.select([tun, sock], [], [])
    if tun in ready:
        packet = os.read(tun, 65535)
        version = packet[0] >> 4 if packet else 0
        if version == 6 and len(packet) >= 40 and (packet[24] == 0xff or packet[24:26] == b'\xfe\x80'):
            continue
        if (version == 4 and len(packet) >= 20) or (version == 6 and len(packet) >= 40):
            sock.sendto(GENEVE + INNER_MACS + ETHERTYPE[version] + packet, (tunnel_to(packet), 6081))
    if sock in ready:
        data, _ = sock.recvfrom(65535)
        if log:
            log.write(data.hex() + '\n')
        if len(data) < 8:
            continue
        header = 8 + (data[0] & 0x3f) * 4
        inner = data[header + 14:]
        if inner and inner[0] >> 4 in (4, 6):
            os.write(tun, inner)

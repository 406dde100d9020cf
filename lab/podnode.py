#!/usr/bin/env python3
"""A pod node, as OVN-Kubernetes would be for egress: packets the pod sends (read from a TUN
device) go to the egress node inside Geneve (VNI 0xff0003, OVN option, OVN's transit MACs);
Geneve arriving from the egress node is unwrapped and written back to the TUN device.

usage: podnode.py TUN NODE_IP EGRESS_NODE_IP
Runs until killed; handles IPv4 only.
"""
import fcntl, os, select, socket, struct, sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

tun_name, node_ip, egress_node = sys.argv[1], sys.argv[2], sys.argv[3]
tun = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', tun_name.encode(), IFF_TUN | IFF_NO_PI))

# Geneve header as OVN sends it between transit switch ports: version 0, 2 option words,
# critical flag, Ethernet payload, VNI 0xff0003, option 0102/80 with ingress key 2, egress 4.
GENEVE = bytes.fromhex('02406558' 'ff000300' '01028001' '00020004')
INNER_ETH = bytes.fromhex('0a5864580004' '0a5864580002' '0800')

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((node_ip, 6081))
print('podnode ready', flush=True)
while True:
    ready, _, _ = select.select([tun, sock], [], [])
    if tun in ready:
        packet = os.read(tun, 65535)
        if packet and packet[0] >> 4 == 4:
            sock.sendto(GENEVE + INNER_ETH + packet, (egress_node, 6081))
    if sock in ready:
        data, _ = sock.recvfrom(65535)
        if len(data) < 8:
            continue
        header = 8 + (data[0] & 0x3f) * 4
        inner = data[header + 14:]
        if inner and inner[0] >> 4 == 4:
            os.write(tun, inner)

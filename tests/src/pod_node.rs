//! The pod node of the small AF_XDP round-trip tests, as a Python script run in its namespace:
//! it builds the Geneve frame OVN would send (VNI 0xff0003, the OVN option) carrying a UDP
//! datagram from pod 10.133.0.3:4000 to `SERVER`:5555, sends it to the gateway `GW` every
//! 250 ms (40 tries) until the reply comes back through the tunnel, and prints the reply as
//! `tunnel from SRC vni VNI inner SRC -> DST SPORT -> DPORT DATA checksum ok|bad`.
//!
//! `python3 -c EXCHANGE NODE GW SERVER [serve]`: with `serve`, the server is this namespace
//! too (one-armed tests, where the pod node is the gateway's only peer): it answers `pong`
//! (again every 250 ms until the answer comes back, 20 times at most) and prints
//! `server saw SRC SPORT DATA` first.

pub const EXCHANGE: &str = r#"
import socket, struct, sys
NODE, GW, SERVER = sys.argv[1:4]
serve = sys.argv[4:] == ['serve']

def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ipv4(src, dst, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0x4000, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload

udp = struct.pack('!HHHH', 4000, 5555, 8 + 4, 0) + b'ping'
inner = ipv4('10.133.0.3', SERVER, udp)
eth = bytes.fromhex('0a5864580004' '0a5864580002' '0800')
geneve = bytes.fromhex('02406558' 'ff000300' '01028001' '00020004')
frame = geneve + eth + inner

tunnel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tunnel.bind((NODE, 6081))
tunnel.settimeout(0.25)
if serve:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((SERVER, 5555))
    server.settimeout(0.25)
def inner_ip(pkt):
    return pkt[8 + (pkt[0] & 0x3f) * 4 + 14:]

def tunnel_udp():
    # Only the UDP reply counts: an ICMP error tunnelled back (the server not yet bound)
    # is the gateway doing its job, not the answer this exchange waits for.
    while True:
        pkt, (tsrc, _) = tunnel.recvfrom(2048)
        ip = inner_ip(pkt)
        if len(ip) >= 28 and ip[9] == 17:
            return pkt, tsrc
        print('tunnel carried protocol', ip[9] if len(ip) > 9 else None, file=sys.stderr)

# Until the far end hears (the local server, or the reply through the tunnel), resend.
for _ in range(40):
    tunnel.sendto(frame, (GW, 6081))
    try:
        if serve:
            data, (src, sport) = server.recvfrom(64)
            break
        pkt, tsrc = tunnel_udp()
        break
    except socket.timeout:
        pass
else:
    raise SystemExit('nothing came back')
if serve:
    print('server saw', src, sport, data.decode())
    # Answer until the answer comes back through the tunnel: the first may be dropped while
    # the gateway resolves the way back.
    for _ in range(20):
        server.sendto(b'pong', (src, sport))
        try:
            pkt, tsrc = tunnel_udp()
            break
        except socket.timeout:
            pass
    else:
        raise SystemExit('no answer came back through the tunnel')
vni = int.from_bytes(pkt[4:7], 'big')
ip = inner_ip(pkt)
ports = struct.unpack('!HH', ip[20:24])
print('tunnel from', tsrc, 'vni', hex(vni), 'inner', socket.inet_ntoa(ip[12:16]), '->',
      socket.inet_ntoa(ip[16:20]), ports[0], '->', ports[1], ip[28:].decode(),
      'checksum', 'ok' if csum(ip[:20]) == 0 else 'bad')
"#;

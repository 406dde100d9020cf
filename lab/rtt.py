#!/usr/bin/env python3
"""Round trips of UDP exchanges with the lab's echo service: COUNT requests one after another
(each waits for its answer, 1 s at most), then the latency quantiles and the losses.

usage: rtt.py SERVER PORT COUNT [BIND_ADDRESS]
prints: rtt N exchanges: p50 X us, p99 Y us, max Z us, lost L
"""
import socket, sys, time

server, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if len(sys.argv) > 4:
    s.bind((sys.argv[4], 0))
s.settimeout(1.0)
# Warm up: the first exchange may wait for neighbours and a new session.
for _ in range(20):
    s.sendto(b'warm', (server, port))
    try:
        s.recv(64)
        break
    except socket.timeout:
        pass
rtts, lost = [], 0
for i in range(count):
    t = time.perf_counter()
    s.sendto(b'rtt %d' % i, (server, port))
    while True:
        try:
            data = s.recv(64)
        except socket.timeout:
            lost += 1
            break
        if data == (b'rtt %d' % i).upper():
            rtts.append((time.perf_counter() - t) * 1e6)
            break
rtts.sort()
q = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] if rtts else float('nan')
print(f'rtt {len(rtts)} exchanges: p50 {q(0.5):.0f} us, p99 {q(0.99):.0f} us, max {rtts[-1] if rtts else 0:.0f} us, lost {lost}')

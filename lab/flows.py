#!/usr/bin/env python3
"""Long-lived flows through the gateway, for failover runs (lab/ha-lab).

  flows.py serve IP PORT                 echo server: each line comes back; logs
                                         `accept IP PORT` and `reset IP PORT` to stdout
  flows.py client SRC DST PORT [options] until SIGINT or --seconds: prints one JSON summary

The client opens --tcp connections from SRC (the pod) to DST:PORT, each sending a numbered
line every --interval seconds (phases spread) and timing its echo; --udp flows do the same
against the UDP echo on DST:9999; --new connections a second open, ask once and close. A
flow's stall is the longest any of its messages waited for its answer. SIGUSR1 opens --burst
more long-lived flows at once (the lab sends it just before a kill: the flows opened in the
last milliseconds of a gateway), counted apart. Every loop is bounded:
the client stops after --seconds at most, and each connection attempt after 5 s.
"""
import json, random, selectors, signal, socket, sys, time


def serve(ip, port):
    sel = selectors.DefaultSelector()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    print('ready', flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    c, peer = ls.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, peer)
                print('accept', peer[0], peer[1], flush=True)
                continue
            c, peer = key.fileobj, key.data
            try:
                data = c.recv(65536)
            except ConnectionResetError:
                print('reset', peer[0], peer[1], flush=True)
                data = b''
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(c)
                c.close()
                continue
            try:
                c.sendall(data)
            except OSError:
                print('reset', peer[0], peer[1], flush=True)
                sel.unregister(c)
                c.close()


class Flow:
    def __init__(self, sock, kind):
        self.sock, self.kind = sock, kind
        self.sent = {}
        self.seq = 0
        self.buf = b''
        self.stall = 0.0
        self.next = 0.0
        self.dead = None
        self.connected = kind == 'udp'


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def client(src, dst, port, n_tcp, n_udp, new_rate, interval, seconds, burst):
    stop = [False]
    bursts = [0]
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGUSR1, lambda *_: bursts.__setitem__(0, bursts[0] + 1))
    sel = selectors.DefaultSelector()
    flows = []
    t0 = time.monotonic()
    # Wall-clock offset, so the times of slow answers can be set beside the lab's events.
    t_wall0 = t0 - time.time()
    slow = []
    slow_new = []
    # Opened at 400 a second, so the first SYNs do not all meet at once.
    for i in range(n_tcp):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex((dst, port))
        f = Flow(s, 'tcp')
        f.opened = time.monotonic()
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, f)
        flows.append(f)
        if i % 40 == 39:
            time.sleep(0.1)
    for _ in range(n_udp):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect((dst, 9999))
        f = Flow(s, 'udp')
        sel.register(s, selectors.EVENT_READ, f)
        flows.append(f)
    now = time.monotonic()
    for f in flows:
        f.next = now + random.random() * interval
    shorts = {'ok': 0, 'failed': 0, 'latencies': []}
    pending_short = []
    next_short = now
    deadline = t0 + seconds
    while not stop[0] and time.monotonic() < deadline:
        now = time.monotonic()
        while bursts[0]:
            bursts[0] -= 1
            for _ in range(burst):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((src, 0))
                s.setblocking(False)
                s.connect_ex((dst, port))
                f = Flow(s, 'tcp')
                f.opened = now
                f.burst = True
                f.next = now + interval
                sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, f)
                flows.append(f)
        if new_rate and now >= next_short:
            next_short = now + 1.0 / new_rate
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex((dst, port))
            g = Flow(s, 'short')
            g.opened = now
            sel.register(s, selectors.EVENT_WRITE, g)
            pending_short.append(g)
        for f in flows:
            if f.dead or now < f.next or not f.connected:
                continue
            f.next += interval
            f.seq += 1
            f.sent[f.seq] = now
            try:
                f.sock.send(b'%d\n' % f.seq)
            except (BlockingIOError, ConnectionRefusedError):
                pass
            except OSError as e:
                f.dead = f.dead or repr(e)
        for key, ev in sel.select(timeout=0.01):
            f = key.data
            now = time.monotonic()
            if f.kind == 'short':
                if not f.connected and ev & selectors.EVENT_WRITE:
                    err = f.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        shorts['failed'] += 1
                        sel.unregister(f.sock)
                        f.sock.close()
                        f.dead = 'connect'
                        continue
                    f.connected = True
                    f.sock.send(b'0\n')
                    sel.modify(f.sock, selectors.EVENT_READ, f)
                    continue
                try:
                    data = f.sock.recv(64)
                except OSError:
                    data = b''
                if data.endswith(b'\n'):
                    shorts['ok'] += 1
                    shorts['latencies'].append(now - f.opened)
                    if now - f.opened > 0.5:
                        slow_new.append(f.opened - t_wall0)
                else:
                    shorts['failed'] += 1
                sel.unregister(f.sock)
                f.sock.close()
                f.dead = 'done'
                continue
            if f.kind == 'tcp' and not f.connected and ev & selectors.EVENT_WRITE:
                err = f.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    f.dead = 'connect errno %d' % err
                    sel.unregister(f.sock)
                    continue
                f.connected = True
                f.connect_time = now - f.opened
                sel.modify(f.sock, selectors.EVENT_READ, f)
                continue
            if not ev & selectors.EVENT_READ:
                continue
            try:
                data = f.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                f.dead = repr(e)
                sel.unregister(f.sock)
                continue
            if f.kind == 'tcp' and not data:
                f.dead = 'closed by the server'
                sel.unregister(f.sock)
                continue
            f.buf += data
            *lines, f.buf = f.buf.split(b'\n')
            if f.kind == 'udp':
                lines, f.buf = [data.strip()], b''
            for line in lines:
                try:
                    seq = int(line)
                except ValueError:
                    continue
                sent = f.sent.pop(seq, None)
                if sent is not None:
                    f.stall = max(f.stall, now - sent)
                    if now - sent > 0.1 and f.kind == 'tcp':
                        slow.append(round(sent - t_wall0, 2))
        # Shorts that hang: failed after 5 s.
        for g in pending_short:
            if not g.dead and now - g.opened > 5:
                shorts['failed'] += 1
                sel.unregister(g.sock)
                g.sock.close()
                g.dead = 'timeout'
        pending_short = [g for g in pending_short if not g.dead]
    now = time.monotonic()
    tcp = [f for f in flows if f.kind == 'tcp']
    udp = [f for f in flows if f.kind == 'udp']
    for f in tcp:
        # A message still unanswered counts as waiting until now.
        for sent in f.sent.values():
            f.stall = max(f.stall, now - sent)
    late = [f for f in tcp if getattr(f, 'burst', False)]
    tcp_long = [f for f in tcp if not getattr(f, 'burst', False)]
    stalls = [f.stall for f in tcp_long if not f.dead]
    udp_lost = sum(len([s for s in f.sent.values() if now - s > 1]) for f in udp)
    print(json.dumps({
        'seconds': round(now - t0, 1),
        'tcp_flows': len(tcp_long),
        'tcp_connected': sum(1 for f in tcp_long if f.connected),
        'tcp_broken': sum(1 for f in tcp_long if f.dead),
        'tcp_broken_reasons': sorted({f.dead for f in tcp if f.dead})[:5],
        'late_flows': len(late),
        'late_connected': sum(1 for f in late if f.connected),
        'late_broken': sum(1 for f in late if f.dead),
        'late_connect_p99_ms': round(percentile([getattr(f, 'connect_time', 0) for f in late], 0.99) * 1000, 1),
        'tcp_messages': sum(f.seq for f in tcp),
        'stall_p50_ms': round(percentile(stalls, 0.5) * 1000, 1),
        'stall_p99_ms': round(percentile(stalls, 0.99) * 1000, 1),
        'stall_max_ms': round(max(stalls, default=0) * 1000, 1),
        'udp_flows': len(udp),
        'udp_messages': sum(f.seq for f in udp),
        'udp_lost': udp_lost,
        'new_ok': shorts['ok'],
        'new_failed': shorts['failed'],
        'new_p99_ms': round(percentile(shorts['latencies'], 0.99) * 1000, 1),
        # Wall-clock seconds modulo 1000 (to 0.1 s) at which lines that waited over 100 ms were sent, with
        # how many: when the stalls happened.
        'slow_sent_at': sorted({round(x % 1000, 1) for x in slow})[:50],
        'slow_count': len(slow),
        'slow_new_opened_at': sorted({round(x % 1000, 1) for x in slow_new})[:50],
    }), flush=True)


def main():
    a = sys.argv[1:]
    if a[0] == 'serve':
        serve(a[1], int(a[2]))
        return
    src, dst, port = a[1], a[2], int(a[3])
    opts = {'--tcp': 2000, '--udp': 50, '--new': 20, '--interval': 1.0, '--seconds': 600,
            '--burst': 0}
    rest = a[4:]
    for i in range(0, len(rest), 2):
        opts[rest[i]] = float(rest[i + 1])
    client(src, dst, port, int(opts['--tcp']), int(opts['--udp']), opts['--new'],
           opts['--interval'], opts['--seconds'], int(opts['--burst']))


if __name__ == '__main__':
    main()

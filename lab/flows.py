#!/usr/bin/env python3
"""Long-lived flows through the gateway, for failover runs (lab/ha-lab).

  flows.py serve IP PORT                 echo server on PORT: each line comes back; a
                                         download server on PORT+1 (16 KB every 50 ms to
                                         each client); the UDP echo on PORT+2. Logs `accept IP
                                         PORT` and `reset IP PORT`, and `udp-source-changed ID
                                         OLD NEW` when a UDP flow arrives from a new source
  flows.py client SRC DST PORT [options] until SIGINT or --seconds: prints one JSON summary

The client opens --tcp connections from SRC (the pod) to DST:PORT, each sending a numbered
line every --interval seconds (phases spread) and timing its echo; --udp flows do the same
against the UDP echo on DST:PORT+2; --new connections a second open, ask once and close;
--download connections read the download server's stream (a download's stall is its longest
gap between two reads); --idle connections send nothing but TCP keepalives (every second)
and, at the end, one line each, which must come back. A flow's stall is the longest any of
its messages waited for its answer. SIGUSR1 opens --burst more long-lived flows at once (the
lab sends it just before a kill: the flows opened in the last milliseconds of a gateway),
counted apart. Every loop is bounded: the client stops after --seconds at most, each
connection attempt after 5 s, and the idle flows' last answers are awaited 3 s at most.
Addresses of either family: an IPv6 one (with a colon) makes IPv6 sockets.
"""
import json, os, random, selectors, signal, socket, sys, time


CHUNK = b'x' * 16384


def family(ip):
    return socket.AF_INET6 if ':' in ip else socket.AF_INET
CHUNK_EVERY = 0.05


def serve(ip, port):
    sel = selectors.DefaultSelector()
    for p, role in ((port, 'echo'), (port + 1, 'download')):
        ls = socket.socket(family(ip), socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, p))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, role)
    us = socket.socket(family(ip), socket.SOCK_DGRAM)
    us.bind((ip, port + 2))
    us.setblocking(False)
    sel.register(us, selectors.EVENT_READ, 'udp')
    udp_sources = {}
    downloads = []
    next_chunk = time.monotonic()
    print('ready', flush=True)
    while True:
        now = time.monotonic()
        if now >= next_chunk:
            next_chunk = now + CHUNK_EVERY
            for c, peer in list(downloads):
                try:
                    c.send(CHUNK)
                except BlockingIOError:
                    pass  # the client reads slower: its window is full
                except OSError:
                    print('reset', peer[0], peer[1], flush=True)
                    downloads.remove((c, peer))
                    sel.unregister(c)
                    c.close()
        for key, _ in sel.select(timeout=max(0.0, next_chunk - time.monotonic())):
            if key.data == 'udp':
                for _ in range(64):
                    try:
                        data, src = us.recvfrom(2048)
                    except BlockingIOError:
                        break
                    flow = data.split(b' ')[0]
                    old = udp_sources.setdefault(flow, src)
                    if old != src:
                        print('udp-source-changed', flow.decode(errors='replace'),
                              '%s:%d' % old[:2], '%s:%d' % src[:2], flush=True)
                        udp_sources[flow] = src
                    us.sendto(data, src)
                continue
            if key.data in ('echo', 'download'):
                try:
                    c, peer = key.fileobj.accept()
                except OSError:
                    continue
                c.setblocking(False)
                if key.data == 'download':
                    downloads.append((c, peer))
                    sel.register(c, selectors.EVENT_READ, ('download', peer))
                else:
                    sel.register(c, selectors.EVENT_READ, peer)
                print('accept', peer[0], peer[1], flush=True)
                continue
            c, peer = key.fileobj, key.data
            download = peer[0] == 'download'
            if download:
                peer = peer[1]
            try:
                data = c.recv(65536)
            except ConnectionResetError:
                print('reset', peer[0], peer[1], flush=True)
                data = b''
            except BlockingIOError:
                continue
            if not data:
                if download:
                    downloads.remove((c, peer))
                sel.unregister(c)
                c.close()
                continue
            if download:
                continue  # a download's client never writes; nothing to echo
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
        self.last_rx = None
        self.received = 0


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def tcp_to(src, dst, port, kind, now, sel):
    s = socket.socket(family(src), socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    if kind == 'idle':
        # A probe a second after a second of silence; five unanswered end it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)
    s.connect_ex((dst, port))
    f = Flow(s, kind)
    f.opened = now
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, f)
    return f


def client(src, dst, port, n_tcp, n_udp, new_rate, interval, seconds, burst, n_download, n_idle):
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
    kinds = ['tcp'] * n_tcp + ['download'] * n_download + ['idle'] * n_idle
    for i, kind in enumerate(kinds):
        flows.append(tcp_to(src, dst, port + (kind == 'download'), kind, time.monotonic(), sel))
        if i % 40 == 39:
            time.sleep(0.1)
    for u in range(n_udp):
        s = socket.socket(family(src), socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        s.connect((dst, port + 2))
        f = Flow(s, 'udp')
        # Unique to this client, so the server tells this run's flows from an earlier run's.
        f.id = b'%d.%d' % (os.getpid(), u)
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
                f = tcp_to(src, dst, port, 'tcp', now, sel)
                f.burst = True
                f.next = now + interval
                flows.append(f)
        if new_rate and now >= next_short:
            next_short = now + 1.0 / new_rate
            s = socket.socket(family(src), socket.SOCK_STREAM)
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex((dst, port))
            g = Flow(s, 'short')
            g.opened = now
            sel.register(s, selectors.EVENT_WRITE, g)
            pending_short.append(g)
        for f in flows:
            if f.dead or now < f.next or not f.connected or f.kind not in ('tcp', 'udp'):
                continue
            f.next += interval
            f.seq += 1
            f.sent[f.seq] = now
            try:
                if f.kind == 'udp':
                    f.sock.send(b'%s %d\n' % (f.id, f.seq))
                else:
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
            if f.kind != 'udp' and not f.connected and ev & selectors.EVENT_WRITE:
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
            if f.kind != 'udp' and not data:
                f.dead = 'closed by the server'
                sel.unregister(f.sock)
                continue
            if f.kind == 'download':
                if f.last_rx is not None:
                    f.stall = max(f.stall, now - f.last_rx)
                f.last_rx = now
                f.received += len(data)
                continue
            f.buf += data
            *lines, f.buf = f.buf.split(b'\n')
            if f.kind == 'udp':
                lines, f.buf = [data.strip().split(b' ')[-1]], b''
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
    # The idle flows speak once: each line must come back (3 s at most).
    idle = [f for f in flows if f.kind == 'idle']
    waiting = set()
    for f in idle:
        if f.connected and not f.dead:
            try:
                f.sock.send(b'1\n')
                waiting.add(f)
            except OSError as e:
                f.dead = repr(e)
    until = time.monotonic() + 3
    while waiting and time.monotonic() < until:
        for key, _ in sel.select(timeout=0.05):
            f = key.data
            if f not in waiting:
                continue
            try:
                data = f.sock.recv(64)
            except BlockingIOError:
                continue
            except OSError as e:
                f.dead = repr(e)
                data = None
            if data is not None and not data:
                f.dead = 'closed by the server'
            waiting.discard(f)
            sel.unregister(f.sock)
    for f in waiting:
        f.dead = 'no answer after idling'
    for f in flows:
        if f.kind == 'download' and f.last_rx is not None and not f.dead:
            f.stall = max(f.stall, now - f.last_rx)
    now = time.monotonic()
    tcp = [f for f in flows if f.kind == 'tcp']
    udp = [f for f in flows if f.kind == 'udp']
    downloads = [f for f in flows if f.kind == 'download']
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
        'tcp_broken_reasons': sorted({f.dead for f in tcp + idle + downloads if f.dead})[:5],
        'download_flows': len(downloads),
        'download_connected': sum(1 for f in downloads if f.connected),
        'download_broken': sum(1 for f in downloads if f.dead),
        'download_mbytes': round(sum(f.received for f in downloads) / 1e6, 1),
        'download_stall_p99_ms': round(percentile([f.stall for f in downloads], 0.99) * 1000, 1),
        'download_stall_max_ms': round(max((f.stall for f in downloads), default=0) * 1000, 1),
        'idle_flows': len(idle),
        'idle_connected': sum(1 for f in idle if f.connected),
        'idle_broken': sum(1 for f in idle if f.dead),
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
            '--burst': 0, '--download': 0, '--idle': 0}
    rest = a[4:]
    for i in range(0, len(rest), 2):
        opts[rest[i]] = float(rest[i + 1])
    client(src, dst, port, int(opts['--tcp']), int(opts['--udp']), opts['--new'],
           opts['--interval'], opts['--seconds'], int(opts['--burst']),
           int(opts['--download']), int(opts['--idle']))


if __name__ == '__main__':
    main()

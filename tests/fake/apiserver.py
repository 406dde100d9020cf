#!/usr/bin/env python3
"""A Kubernetes API server stand-in that speaks the real list/watch wire protocol for the
four kinds egressgw-watch reads: JSON lists with metadata.resourceVersion, watches as chunked
streams of {"type", "object"} events (ADDED, MODIFIED, DELETED, BOOKMARK, and ERROR with a 410
Status when the requested resourceVersion is too old), honouring resourceVersion,
allowWatchBookmarks and timeoutSeconds. It takes JSON merge patches (RFC 7386) of an
EgressService's status subresource and of a Node, as a standalone watcher writes them, and
sends them to watchers as MODIFIED events. Tests drive it over POST /_test/apply (an event) and
POST /_test/compact (forget history, so older watches get 410 Gone).

Usage: apiserver.py PORT   (binds 127.0.0.1; 0 picks a free port; prints "listening PORT")
"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

KINDS = {
    "/api/v1/nodes": ("Node", "v1"),
    "/api/v1/services": ("Service", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
    "/apis/k8s.ovn.org/v1/egressservices": ("EgressService", "k8s.ovn.org/v1"),
}
lock = threading.Condition()
rv = 100
objects = {k: {} for k, _ in KINDS.values()}   # kind -> key -> object
log = []                                        # (rv, kind, type, object)
compacted = 0                                   # watches from before this get 410
stats = {"lists": 0, "watches": 0, "gone": 0, "patches": 0}   # what clients did

def merge_patch(target, patch):
    """RFC 7386: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target

def patch_target(path):
    """(kind, key, subresource) of a PATCH path, or None."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["apis", "k8s.ovn.org", "v1"] and len(parts) == 8 and parts[3] == "namespaces" \
            and parts[5] == "egressservices" and parts[7] == "status":
        return ("EgressService", parts[4] + "/" + parts[6], "status")
    if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
        return ("Node", "/" + parts[3], None)
    return None

def key(o):
    m = o["metadata"]
    return m.get("namespace", "") + "/" + m["name"]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        global rv, compacted
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with lock:
            if self.path == "/_test/apply":
                kind, typ, obj = body["kind"], body["type"], body["object"]
                rv += 1
                obj["metadata"]["resourceVersion"] = str(rv)
                obj.setdefault("kind", kind)
                obj.setdefault("apiVersion", next(v for k, v in KINDS.values() if k == kind))
                if typ == "DELETED":
                    objects[kind].pop(key(obj), None)
                else:
                    objects[kind][key(obj)] = obj
                log.append((rv, kind, typ, obj))
                lock.notify_all()
            elif self.path == "/_test/compact":
                compacted = rv
                lock.notify_all()
            else:
                return self.send_json(404, {"kind": "Status", "code": 404})
        self.send_json(200, {"resourceVersion": str(rv)})

    def do_PATCH(self):
        global rv
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        target = patch_target(urlparse(self.path).path)
        if target is None or "merge-patch" not in self.headers.get("Content-Type", ""):
            return self.send_json(415 if target else 404, {"kind": "Status", "apiVersion": "v1",
                                  "status": "Failure", "code": 415 if target else 404,
                                  "message": "merge patches of egressservices/status and nodes only"})
        kind, k, sub = target
        with lock:
            obj = objects[kind].get(k)
            if obj is None:
                return self.send_json(404, {"kind": "Status", "apiVersion": "v1",
                                            "status": "Failure", "code": 404, "reason": "NotFound",
                                            "message": kind + " " + k + " not found"})
            if sub == "status":
                # The status subresource changes the status and nothing else.
                body = {"status": body.get("status")}
            obj = merge_patch(obj, body)
            rv += 1
            obj["metadata"]["resourceVersion"] = str(rv)
            objects[kind][k] = obj
            log.append((rv, kind, "MODIFIED", obj))
            stats["patches"] += 1
            lock.notify_all()
        self.send_json(200, obj)

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/_test/stats":
            with lock:
                return self.send_json(200, dict(stats))
        if url.path not in KINDS:
            return self.send_json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "code": 404, "reason": "NotFound", "message": url.path})
        kind, api_version = KINDS[url.path]
        if q.get("watch") not in ("true", "1"):
            with lock:
                stats["lists"] += 1
                items = list(objects[kind].values())
                body = {"kind": kind + "List", "apiVersion": api_version,
                        "metadata": {"resourceVersion": str(rv)}, "items": items}
            return self.send_json(200, body)
        since = int(q.get("resourceVersion") or 0)
        deadline = time.time() + min(int(q.get("timeoutSeconds", 290)), 290)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            with lock:
                stats["watches"] += 1
                if since < compacted:
                    stats["gone"] += 1
                    self.chunk({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: %d (%d)" % (since, compacted),
                        "reason": "Expired", "code": 410}})
                    self.wfile.write(b"0\r\n\r\n")
                    return
                last_bookmark = time.time()
                while time.time() < deadline:
                    for (r, k, typ, obj) in log:
                        if k == kind and r > since:
                            self.chunk({"type": typ, "object": obj})
                            since = r
                    if bookmarks and time.time() - last_bookmark > 1:
                        self.chunk({"type": "BOOKMARK", "object": {
                            "kind": kind, "apiVersion": api_version,
                            "metadata": {"resourceVersion": str(rv)}}})
                        last_bookmark = time.time()
                    if compacted > since:
                        break  # history gone under this watch: end it, the client re-watches
                    lock.wait(timeout=0.5)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()

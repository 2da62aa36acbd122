"""A real HTTP server on 127.0.0.1 that replays recorded responses at their URL paths.

Routes map a request path (with its query string, exactly as the client sends it, or the path
alone) to bytes, or to a callable for faults (status codes, slow answers, changing bodies).
ETag and If-None-Match work, so conditional requests can be tested.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; charset=ISO-8859-1"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Route = bytes | Path | Reply | Callable[[], Reply]


class RecordedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server.hits.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                if route is None:
                    route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    reply = Reply(b"<html><body>404 Not Found</body></html>", 404, "text/html")
                elif isinstance(route, Reply):
                    reply = route
                elif isinstance(route, Path):
                    reply = Reply(route.read_bytes())
                elif isinstance(route, bytes):
                    reply = Reply(route)
                else:
                    reply = route()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                etag = '"' + hashlib.sha256(reply.body).hexdigest()[:16] + '"'
                if reply.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.status == 200:
                    self.send_header("ETag", etag)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(reply.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def serve_tree(self, root: Path, prefix: str = "") -> None:
        """Serve every file under root at prefix + its relative path."""
        for path in root.rglob("*"):
            if path.is_file():
                self.routes[f"{prefix}/{path.relative_to(root).as_posix()}"] = path

    def start(self) -> RecordedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

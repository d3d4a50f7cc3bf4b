"""A stand-in for tailscaled's LocalAPI: `GET /localapi/v0/whois?addr=IP` on a unix socket,
answering the documented WhoIsResponse JSON for the addresses it knows and 404 otherwise.
(tailscaled itself cannot run on the test machines.)"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def whois(login: str, node: str, address: str, grants: dict[str, list[dict]] | None = None) -> dict:
    return {
        "Node": {
            "ID": 7,
            "StableID": "nSTABLE7",
            "Name": f"{node}.example.ts.net.",
            "ComputedName": node,
            "Addresses": [f"{address}/32"],
        },
        "UserProfile": {"ID": 3, "LoginName": login, "DisplayName": login.split("@")[0].title()},
        "CapMap": grants or {},
    }


class FakeTailscaled:
    def __init__(self, path: Path, peers: dict[str, dict]):
        self.path = path
        self.peers = peers
        self.requests: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                owner.requests.append({"path": url.path, "query": query, "host": self.headers.get("Host")})
                peer = owner.peers.get(query.get("addr", "")) if url.path == "/localapi/v0/whois" else None
                if peer is None:
                    body, status = f"no match for IP:port {query.get('addr')}\n".encode(), 404
                else:
                    body, status = json.dumps(peer).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # unix sockets have no client address to log
                pass

        self.server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)

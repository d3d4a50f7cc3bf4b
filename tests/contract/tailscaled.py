"""A stand-in for tailscaled's LocalAPI on a unix socket: `GET /localapi/v0/whois?addr=IP`,
answering the documented WhoIsResponse JSON for the addresses it knows and 404 otherwise, and
fixed documents for other paths (`/localapi/v0/status`, `/localapi/v0/prefs`) in the shapes
tailscaled answers (ipnstate.Status, ipn.Prefs). (tailscaled itself cannot run on the test
machines: it cannot join a tailnet here.)"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def whois(login: str, node: str, address: str, grants: dict[str, list[dict]] | None = None,
          tags: list[str] | None = None) -> dict:
    """A WhoIsResponse; a tagged node's has its Tags and the `tagged-devices` user profile."""
    found = {
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
    if tags:
        found["Node"]["Tags"] = tags
    return found


class FakeTailscaled:
    def __init__(self, path: Path, peers: dict[str, dict], documents: dict[str, dict] | None = None):
        self.path = path
        self.peers = peers
        self.documents = documents or {}
        self.requests: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                owner.requests.append({"path": url.path, "query": query, "host": self.headers.get("Host")})
                if url.path == "/localapi/v0/whois":
                    peer = owner.peers.get(query.get("addr", ""))
                else:
                    peer = owner.documents.get(url.path)
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


def status(self_node: dict, peers: list[dict], tailnet: str = "example.ts.net") -> dict:
    """An ipnstate.Status as tailscaled 1.9x answers it (field names as in ipn/ipnstate)."""
    return {
        "Version": "1.96.2-t1234abcd",
        "TUN": True,
        "BackendState": "Running",
        "HaveNodeKey": True,
        "AuthURL": "",
        "TailscaleIPs": self_node["TailscaleIPs"],
        "Self": self_node,
        "Health": [],
        "MagicDNSSuffix": tailnet,
        "CurrentTailnet": {"Name": "admin@example.com", "MagicDNSSuffix": tailnet, "MagicDNSEnabled": True},
        "CertDomains": [self_node["DNSName"].rstrip(".")],
        "Peer": {f"nodekey:{index:064x}": peer for index, peer in enumerate(peers, start=1)},
        "User": {"3": {"ID": 3, "LoginName": "alice@example.com", "DisplayName": "Alice"}},
        "ClientVersion": None,
    }


def peer_status(host: str, ips: list[str], online: bool, tags: list[str] | None = None, os: str = "linux",
                tailnet: str = "example.ts.net", cap_map: dict | None = None) -> dict:
    """One ipnstate.PeerStatus (Tags and CapMap are left out when empty, as tailscaled does)."""
    peer = {
        "ID": f"n{host}CNTRL", "NodeID": 7, "PublicKey": "nodekey:" + "ab" * 32, "HostName": host,
        "DNSName": f"{host}.{tailnet}.", "OS": os, "UserID": 3, "TailscaleIPs": ips, "AllowedIPs": ips,
        "Addrs": None, "CurAddr": "", "Relay": "fra", "PeerRelay": "", "RxBytes": 0, "TxBytes": 0,
        "Created": "2026-01-02T03:04:05Z", "LastWrite": "0001-01-01T00:00:00Z",
        "LastSeen": "2026-11-30T10:00:00Z", "LastHandshake": "0001-01-01T00:00:00Z", "Online": online,
        "ExitNode": False, "ExitNodeOption": False, "Active": online, "PeerAPIURL": None,
        "TaildropTarget": 0, "NoFileSharingReason": "", "InNetworkMap": True, "InMagicSock": True,
        "InEngine": True,
    }
    if tags:
        peer["Tags"] = tags
    if cap_map:
        peer["CapMap"] = cap_map
    return peer

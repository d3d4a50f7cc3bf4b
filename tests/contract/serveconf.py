"""tailscaled's rules for the file `tailscale serve set-config` applies, written down from
tailscale's `ipn/conffile/serveconf.go` and `cmd/tailscale/cli/serve_v2.go` (v1.90+), to check
what `systemmanager tailscale service-config` prints without tailscaled. Each rule raises
ValueError with tailscaled's own words where it has them."""

from __future__ import annotations

import json
import re

SCHEMES = ("http://", "https://", "https+insecure://", "tcp://", "tls-terminated-tcp://", "file://")
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def hujson_to_json(text: str) -> str:
    """HuJSON as hujson.Standardize reads it: `//` line comments out (none inside strings here),
    trailing commas out."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    return re.sub(r",(\s*[}\]])", r"\1", "\n".join(lines))


def check(text: str) -> dict:
    """The parsed configuration, or ValueError naming the broken rule."""
    document = json.loads(hujson_to_json(text))
    if "version" not in document:
        raise ValueError('config file looks like a Services configuration file but is missing the required "version" field')
    if document["version"] != "0.0.1":
        raise ValueError(f"unsupported config file version {document['version']!r}")
    unknown = set(document) - {"version", "services"}
    if unknown:
        raise ValueError(f"unknown object member name {sorted(unknown)[0]!r}")
    for name, service in document.get("services", {}).items():
        if not name.startswith("svc:") or not LABEL.match(name[4:]):
            raise ValueError(f"invalid service name {name!r}")
        unknown = set(service) - {"endpoints", "advertised"}
        if "version" in unknown:
            raise ValueError("services cannot be versioned separately from config file")
        if unknown:
            raise ValueError(f"unknown object member name {sorted(unknown)[0]!r} within {name}")
        if "endpoints" not in service:
            raise ValueError(f'service {name!r}: missing "endpoints" field')
        if service.get("advertised") not in (True, False, None):
            raise ValueError(f"service {name!r}: advertised must be true, false or null")
        for source, target in service["endpoints"].items():
            check_endpoint(name, source, target)
    return document


def check_endpoint(service: str, source: str, target: str) -> None:
    protocol, _, ports = source.rpartition(":")
    if protocol != "tcp":
        raise ValueError(f"service {service!r}: source ports must be TCP")
    first, _, last = ports.partition("-")
    if not first.isdigit() or (last and not last.isdigit()) or not 0 < int(first) <= 65535:
        raise ValueError(f"invalid port range {ports!r}")
    if "://" not in target:
        raise ValueError("handler not of form <proto>://<destination>")
    if not target.startswith(SCHEMES):
        raise ValueError("unsupported protocol")
    destination = target.split("://", 1)[1]
    if not destination.startswith("unix:") and "/" in destination:
        raise ValueError(f"port range {destination.rsplit(':', 1)[-1]!r}: invalid first integer")
    # The trap (tailscale issues 18219, 19724): the scheme decides TLS, so an http:// target
    # makes any port plain HTTP; clients that ask https:// on it fail, or worse, fall back.
    if target.startswith("http://") and first != "80":
        raise ValueError(f"service {service!r}: tcp:{first} with an http:// target is plain HTTP, not TLS")

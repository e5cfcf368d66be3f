"""POSTs a body with a stock Python HTTP client, for tests/it/refusals.rs.

    python post.py CLIENT ORIGIN PATH BODY_BYTES TIMES CA_CERT [NAME:VALUE ...]

CLIENT is `requests` (HTTP/1.1) or `httpx` (with http2=True, so HTTP/2 by ALPN). Each try
uses a fresh client (a fresh connection, as a script does), sends the body whole with the
given header fields, verifies the certificate against CA_CERT (the gateway's self-signed one)
and reads the response to its end. Prints one JSON line: a list of
{ status, version, contentType, body, error } per try.
"""

import json
import sys

client, origin, path, size, times, ca = sys.argv[1:7]
fields = dict(f.split(":", 1) for f in sys.argv[7:])
headers = {"content-type": "application/octet-stream", **{k.lower(): v for k, v in fields.items()}}
body = b"a" * int(size)
url = origin + path


def with_requests():
    import requests

    with requests.Session() as s:
        r = s.post(url, data=body, headers=headers, verify=ca, timeout=10)
        version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(r.raw.version, str(r.raw.version))
        return r.status_code, version, r.headers.get("content-type"), r.text


def with_httpx():
    import httpx

    with httpx.Client(http2=True, verify=ca, timeout=10) as c:
        r = c.post(url, content=body, headers=headers)
        return r.status_code, r.http_version, r.headers.get("content-type"), r.text


send = {"requests": with_requests, "httpx": with_httpx}[client]
results = []
for _ in range(int(times)):
    out = {"status": None, "version": None, "contentType": None, "body": "", "error": None}
    try:
        out["status"], out["version"], out["contentType"], out["body"] = send()
    except Exception as e:  # any failure is the finding: report it, do not stop
        out["error"] = f"{type(e).__name__}: {e}"
    results.append(out)
print(json.dumps(results))

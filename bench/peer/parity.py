#!/usr/bin/env python3
"""parity.py: the peer and the gateway decide the same bodies alike?

    parity.py GATEWAY_URL PEER_URL REPO_ROOT OUT_FILE

Sends every create body of the gateway's own test data to both, one after
the other, over POST /v1/containers: the contract cases of
tests/data/schema/ (the create_container_body ones, .json and raw .body)
and the requests of the policy cases of tests/data/policy/apply/ (decided
here under the one policy both run, not the case's own). Compares the
status, then error.code, then error.param. Prints one summary
line; writes every disagreement to OUT_FILE. Decides nothing about speed
and fails nothing: the bench reports what it says.
"""
import glob
import http.client
import json
import os
import sys
import urllib.parse


def bodies(root):
    for path in sorted(glob.glob(os.path.join(root, "tests/data/schema/*.json"))):
        with open(path, "rb") as f:
            case = json.load(f)
        if case.get("schema", "create_container_body") != "create_container_body":
            continue
        if "body" in case:
            yield os.path.basename(path), case["body"].encode("utf-8", "surrogatepass")
    for path in sorted(glob.glob(os.path.join(root, "tests/data/schema/*.body"))):
        expect = path[: -len(".body")] + ".expect"
        if os.path.exists(expect):
            with open(expect, "rb") as f:
                if json.load(f).get("schema", "create_container_body") != "create_container_body":
                    continue
        with open(path, "rb") as f:
            yield os.path.basename(path), f.read()
    for path in sorted(glob.glob(os.path.join(root, "tests/data/policy/apply/*.json"))):
        with open(path, "rb") as f:
            doc = json.load(f)
        for i, case in enumerate(doc.get("cases", [])):
            if "request" in case:
                name = "%s#%d" % (os.path.basename(path), i)
                yield name, json.dumps(case["request"]).encode()


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def post(self, body):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request("POST", "/v1/containers", body,
                                  {"Content-Type": "application/json",
                                   "Authorization": "Bearer sk-bench-not-a-real-key"})
                res = self.conn.getresponse()
                data = res.read()
                if res.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return res.status, data
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return 0, b""


def outcome(status, data):
    code = param = None
    if status >= 400:
        try:
            err = json.loads(data)["error"]
            code, param = err.get("code"), err.get("param")
        except (ValueError, KeyError, TypeError):
            code = "(not an error object)"
    return status, code, param


def main():
    gw, peer = Client(sys.argv[1]), Client(sys.argv[2])
    root, out = sys.argv[3], sys.argv[4]
    n = same_status = same_code = same_all = 0
    diffs = []
    for name, body in bodies(root):
        a = outcome(*gw.post(body))
        b = outcome(*peer.post(body))
        n += 1
        if a[0] == b[0]:
            same_status += 1
        if a[:2] == b[:2]:
            same_code += 1
        if a == b:
            same_all += 1
        else:
            diffs.append("%s: gateway %s %s %s; peer %s %s %s" % ((name,) + a + b))
    with open(out, "w") as f:
        f.write("\n".join(diffs) + ("\n" if diffs else ""))
    print("PARITY bodies=%d same_status=%d same_code=%d same_all=%d"
          % (n, same_status, same_code, same_all))


if __name__ == "__main__":
    main()

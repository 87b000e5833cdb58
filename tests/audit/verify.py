#!/usr/bin/env python3
"""An independent check of the gateway's audit log, with the public key alone.

  verify.py --public-key PUB [--state FILE] [--inclusion PROOF --request-id ID]
            [--consistency PROOF] AUDITFILE...

Written from the README and the specifications it names (RFC 6962/9162,
c2sp.org/signed-note, c2sp.org/tlog-checkpoint), not from the gateway's C:

- the leaves are the lines of the files, in order, each without its newline,
  except the lines that begin with {"type":"checkpoint", ;
- the root of the first n leaves is MTH of RFC 9162, computed here by its
  recursive definition;
- every checkpoint line's "note" must carry a signature line of the public
  key (key ID = SHA-256(name || 0x0A || 0x01 || key)[:4]) that verifies over
  the note text, and name a tree size and root that match the leaves before it;
- with --state, the size and root of the latest checkpoint verified are kept
  in FILE, and a log shorter than that, or whose first leaves no longer hash
  to that root, fails;
- --inclusion takes what `gateway audit-prove ... REQUEST_ID` printed and
  checks it (RFC 9162 2.1.3.2) for the request's record, against the
  latest checkpoint; --consistency takes what `audit-prove --consistency`
  printed and checks it (RFC 9162 2.1.4.2).

Prints "OK ..." and exits 0, or "FAIL: ..." and exits 1; 2 for usage.
Standard library and `cryptography` (Debian's python3-cryptography) only.
"""
import argparse
import base64
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT = b'{"type":"checkpoint",'
DASH = "\u2014 "


class Fail(Exception):
    pass


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves, lo, hi, memo):
    """MTH(D[lo:hi]) by RFC 9162's definition; perfect subtrees memoized."""
    n = hi - lo
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[lo]
    key = (lo, hi)
    if key in memo:
        return memo[key]
    k = 1
    while k * 2 < n:
        k *= 2
    h = node_hash(mth(leaves, lo, lo + k, memo), mth(leaves, lo + k, hi, memo))
    if n & (n - 1) == 0:
        memo[key] = h
    return h


def key_id(name, pub):
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]


def read_note(note, pub, where):
    """(origin, size, root) of a signed checkpoint note, after checking its
    signature by pub."""
    if not note.endswith("\n"):
        raise Fail(f"{where}: the note does not end in a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise Fail(f"{where}: the checkpoint is not signed")
    text, sigs = note[: cut + 1], note[cut + 2 :]
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Fail(f"{where}: the note is not a checkpoint")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise Fail(f"{where}: the tree size {size!r} is malformed")
    root = base64.b64decode(root, validate=True)
    if len(root) != 32:
        raise Fail(f"{where}: the root hash is not 32 bytes")
    verified = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith(DASH):
            raise Fail(f"{where}: a signature line is malformed: {line!r}")
        name, _, b64 = line[len(DASH) :].partition(" ")
        sig = base64.b64decode(b64, validate=True)
        if len(sig) != 68 or sig[:4] != key_id(name, pub):
            continue  # another key's, a witness's
        try:
            Ed25519PublicKey.from_public_bytes(pub).verify(sig[4:], text.encode())
        except InvalidSignature:
            raise Fail(f"{where}: the checkpoint's signature does not verify")
        verified = True
    if not verified:
        raise Fail(f"{where}: the checkpoint is not signed by this key")
    return origin, int(size), root


def read_log(files, pub):
    """The leaf hashes, every leaf's bytes, and the checkpoints, checked."""
    leaves, lines, checkpoints, memo = [], [], [], {}
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        parts = data.split(b"\n")
        if parts[-1] != b"":
            raise Fail(f"{path}: the last line is cut off")
        for no, line in enumerate(parts[:-1], 1):
            where = f"{path}:{no}"
            if not line.startswith(CHECKPOINT):
                if no == 1 and path == files[0] and line.startswith(b'{"type":"segment",'):
                    if json.loads(line).get("tree_size", 0) != 0:
                        raise Fail(f"{where}: the series begins mid-tree; give all of it")
                leaves.append(leaf_hash(line))
                lines.append(line)
                continue
            try:
                note = json.loads(line)["note"]
            except (ValueError, KeyError, TypeError):
                raise Fail(f"{where}: a checkpoint line without a readable note")
            origin, size, root = read_note(note, pub, where)
            if size > len(leaves):
                raise Fail(f"{where}: the checkpoint counts {size} leaves, "
                           f"only {len(leaves)} come before it")
            if mth(leaves, 0, size, memo) != root:
                raise Fail(f"{where}: the checkpoint's root does not match the leaves")
            checkpoints.append((size, root, origin, where))
    return leaves, lines, checkpoints, memo


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 2.1.4.2 (an empty proof from 0 or to the same size)."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if first > second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def hashes(values):
    out = [base64.b64decode(v, validate=True) for v in values]
    if any(len(h) != 32 for h in out):
        raise Fail("a proof hash is not 32 bytes")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--state")
    ap.add_argument("--inclusion")
    ap.add_argument("--request-id")
    ap.add_argument("--consistency")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if bool(a.inclusion) != bool(a.request_id):
        ap.error("--inclusion and --request-id go together")
    with open(a.public_key, "rb") as fh:
        key = serialization.load_pem_public_key(fh.read())
    pub = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    leaves, lines, checkpoints, memo = read_log(a.files, pub)
    if not checkpoints:
        raise Fail("no checkpoint")
    size, root, origin, where = max(checkpoints, key=lambda c: c[0])
    said = [f"OK {len(leaves)} leaves, {len(checkpoints)} checkpoints; "
            f"the latest ({where}) covers {size}"]
    if len(leaves) > size:
        said.append(f"{len(leaves) - size} not yet covered")

    if a.state and os.path.exists(a.state):
        with open(a.state) as fh:
            st = json.load(fh)
        old_size, old_root = st["tree_size"], base64.b64decode(st["root"])
        if len(leaves) < old_size:
            raise Fail(f"the log is shorter than the state: {old_size} leaves then, "
                       f"{len(leaves)} now (truncated)")
        if mth(leaves, 0, old_size, memo) != old_root:
            raise Fail(f"the first {old_size} leaves differ from the state's: rewritten")
    if a.state:
        with open(a.state, "w") as fh:
            json.dump({"origin": origin, "tree_size": size,
                       "root": base64.b64encode(root).decode()}, fh)

    if a.inclusion:
        with open(a.inclusion) as fh:
            proof = json.load(fh)
        # The record whose request_id is the id; else, when the client saw
        # the upstream's id, the first whose upstream_request_id is.
        index = upstream = None
        for i, line in enumerate(lines):
            if a.request_id.encode() not in line:
                continue
            rec = json.loads(line)
            if rec.get("type") != "request":
                continue
            if rec.get("request_id") == a.request_id:
                index = i
                break
            if upstream is None and rec.get("upstream_request_id") == a.request_id:
                upstream = i
        if index is None:
            index = upstream
        if index is None:
            raise Fail(f"no record of {a.request_id}")
        if proof["leaf_index"] != index or proof["tree_size"] != size:
            raise Fail(f"the proof is for leaf {proof['leaf_index']} of {proof['tree_size']}; "
                       f"the record is leaf {index}, the latest checkpoint of {size}")
        if not verify_inclusion(leaves[index], index, size, hashes(proof["inclusion"]), root):
            raise Fail("the inclusion proof does not verify")
        said.append(f"inclusion of leaf {index} verified")

    if a.consistency:
        with open(a.consistency) as fh:
            proof = json.load(fh)
        old = proof["old_size"]
        if proof["tree_size"] != size or old > len(leaves):
            raise Fail("the consistency proof is not to the latest checkpoint")
        if not verify_consistency(old, size, mth(leaves, 0, old, memo), root,
                                  hashes(proof["consistency"])):
            raise Fail("the consistency proof does not verify")
        said.append(f"consistency from {old} verified")
    print("; ".join(said))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    except (ValueError, KeyError, TypeError) as e:
        print(f"FAIL: malformed: {e!r}")
        sys.exit(1)

#!/usr/bin/env python3
"""The Kubernetes manifests as rendered (`kubectl kustomize deploy/kubernetes`),
checked the way a cluster would meet them (run by tests/deploy/check.sh).

  check_k8s.py RENDERED.yaml WORKDIR --gateway BIN --certs DIR --config-source FILE

From the rendered YAML alone:

- every file a pod mounts from a Secret or a ConfigMap is readable by the
  pod's user, under the kubelet's rules: the files belong to root, to group
  fsGroup when the pod sets one (and the kubelet then adds group read to
  their mode), with the mode of their item, else the volume's defaultMode,
  else 0644; a Secret's file is readable by no other user;
- every container has resource requests (cpu, memory) and a memory limit,
  and readiness and liveness probes; the gateway's probes are /readyz and
  /healthz on the port of its admin_listen, which is not a loopback
  address; its listen port is a port the container declares;
- every Secret, ConfigMap and key an env var or a volume names exists, and
  every variable the config names (*_env) is set;
- every file the config names (tls.*, policy_file, ...) is in a mounted
  volume and readable by the pod's user;
- store.url names a Service whose pods are a Redis that keeps its data (an
  append-only file on a PersistentVolumeClaim the redis user can write)
  behind a password from the same Secret the gateway reads;
- the NetworkPolicies that select the Redis pods admit only the gateway's
  pods, only on the Redis port;
- every Service's target ports exist on the pods it selects; the
  PodDisruptionBudget covers the gateway and lets one pod go; the grace
  period outlasts shutdown_grace_ms and the preStop pause.

Then it lays out the gateway pod's mounted files in WORKDIR/pod as the
kubelet would (owner, group and mode; absolute paths in the config moved
under WORKDIR/pod) and runs `BIN --config ... --check` as the pod's user and
groups (setpriv; when not root, as this user, which then checks the config
but not the permissions). A kubernetes.io/tls Secret that holds a
placeholder gets the development certificate from DIR.

Prints one line per check; exits 1 if any fails.
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

FAILS = []
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
READONLY_VOLUMES = ("secret", "configMap", "projected", "downwardAPI")


def ok(msg):
    print("  ok    " + msg)


def fail(msg):
    FAILS.append(msg)
    print("  FAIL  " + msg)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


def note(msg):
    print("  note  " + msg)


# ---- the rendered objects ----


class Objects:
    def __init__(self, docs):
        self.docs = [d for d in docs if isinstance(d, dict)]

    def of(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def get(self, kind, name):
        for d in self.of(kind):
            if d["metadata"]["name"] == name:
                return d
        return None

    def workloads(self):
        return [d for d in self.docs if d.get("kind") in WORKLOADS]


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def pod_labels(w):
    return w["spec"]["template"]["metadata"].get("labels") or {}


def selects(selector, labels):
    """Whether a LabelSelector (matchLabels, matchExpressions) matches."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def service_selects(svc, labels):
    sel = svc["spec"].get("selector")
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def containers(spec):
    return (spec.get("initContainers") or []) + spec["containers"]


def port_number(container, port):
    """A probe's or Service's port (number or name) on the container."""
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


# ---- the kubelet's files ----


def object_data(obj):
    """A ConfigMap's or Secret's keys and their bytes."""
    out = {}
    for k, v in (obj.get("data") or {}).items():
        out[k] = base64.b64decode(v) if obj["kind"] == "Secret" else v.encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    for k, v in (obj.get("stringData") or {}).items():
        out[k] = v.encode()
    return out


def source_files(objs, kind, src, default_mode, where):
    """The files one configMap or secret source gives: [(path, bytes, mode, kind, name)]."""
    name = src.get("name") if kind == "ConfigMap" else src.get("secretName", src.get("name"))
    obj = objs.get(kind, name)
    if obj is None:
        if not src.get("optional"):
            fail("%s: %s %s is not in the manifests" % (where, kind, name))
        return []
    data = object_data(obj)
    mode = src.get("defaultMode", default_mode)
    files = []
    if src.get("items"):
        for it in src["items"]:
            if it["key"] not in data:
                fail("%s: %s %s has no key %s" % (where, kind, name, it["key"]))
                continue
            files.append((it["path"], data[it["key"]], it.get("mode", mode), kind, name))
    else:
        for k, v in data.items():
            files.append((k, v, mode, kind, name))
    return files


def volume_files(objs, vol, where):
    if "configMap" in vol:
        return source_files(objs, "ConfigMap", vol["configMap"], 0o644, where)
    if "secret" in vol:
        return source_files(objs, "Secret", vol["secret"], 0o644, where)
    if "projected" in vol:
        files = []
        mode = vol["projected"].get("defaultMode", 0o644)
        for s in vol["projected"].get("sources") or []:
            if "configMap" in s:
                files += source_files(objs, "ConfigMap", s["configMap"], mode, where)
            elif "secret" in s:
                files += source_files(objs, "Secret", s["secret"], mode, where)
        return files
    return None


class PodUser:
    def __init__(self, spec, c):
        psc = spec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        self.uid = csc.get("runAsUser", psc.get("runAsUser"))
        self.gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        self.fs_group = psc.get("fsGroup")
        self.groups = set(psc.get("supplementalGroups") or [])
        if self.fs_group is not None:
            self.groups.add(self.fs_group)
        if self.gid is not None:
            self.groups.add(self.gid)

    def can_read(self, owner, group, mode):
        if self.uid == 0:
            return True
        if self.uid == owner:
            return bool(mode & 0o400)
        if group in self.groups:
            return bool(mode & 0o040)
        return bool(mode & 0o004)


def kubelet_owner(spec, vol_mode):
    """The owner, group and mode the kubelet gives a file of a read-only
    volume: root's; with fsGroup, group fsGroup and group read added
    (SetVolumeOwnership in pkg/volume/volume_linux.go)."""
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    if fs_group is None:
        return 0, 0, vol_mode
    return 0, fs_group, vol_mode | 0o440


def mounted_files(objs, spec, c, where, claims=()):
    """{absolute path: (bytes, owner, group, mode, kind, name)} of the files
    the container sees from Secret and ConfigMap volumes."""
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    vols.update({name: {"name": name, "persistentVolumeClaim": {}} for name in claims})
    out = {}
    for m in c.get("volumeMounts") or []:
        vol = vols.get(m["name"])
        if vol is None:
            fail("%s: mounts %s, which is no volume of the pod" % (where, m["name"]))
            continue
        files = volume_files(objs, vol, where)
        if files is None:
            continue
        for rel, data, mode, kind, name in files:
            if m.get("subPath"):
                if rel != m["subPath"]:
                    continue
                path = m["mountPath"]
            else:
                path = m["mountPath"].rstrip("/") + "/" + rel
            owner, group, fmode = kubelet_owner(spec, mode)
            out[path] = (data, owner, group, fmode, kind, name)
    return out


# ---- the checks ----


def check_workload_basics(objs, w):
    spec = pod_spec(w)
    wname = "%s/%s" % (w["kind"], w["metadata"]["name"])
    for c in containers(spec):
        where = "%s container %s" % (wname, c["name"])
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        check("cpu" in req and "memory" in req and "memory" in lim,
              "%s: resources (requests cpu %s, memory %s; limit memory %s)"
              % (where, req.get("cpu"), req.get("memory"), lim.get("memory")))
        if c in spec["containers"]:
            check(c.get("readinessProbe") and c.get("livenessProbe"),
                  "%s: readiness and liveness probes" % where)
        user = PodUser(spec, c)
        if not check(user.uid is not None and user.gid is not None,
                     "%s: runs as a stated user and group (%s:%s)" % (where, user.uid, user.gid)):
            continue
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or \
                (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref is None:
                continue
            kind = "Secret" if "secretKeyRef" in e["valueFrom"] else "ConfigMap"
            obj = objs.get(kind, ref["name"])
            check(obj is not None and ref["key"] in object_data(obj),
                  "%s: env %s from %s %s key %s exists" % (where, e["name"], kind, ref["name"], ref["key"]))
        claims = [t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []]
        files = mounted_files(objs, spec, c, where, claims)
        for path, (_, owner, group, mode, kind, name) in sorted(files.items()):
            check(user.can_read(owner, group, mode),
                  "%s: can read %s (%s %s; %d:%d mode %04o; runs as %d, groups %s)"
                  % (where, path, kind, name, owner, group, mode, user.uid, sorted(user.groups)))
            if kind == "Secret":
                check(not mode & 0o007, "%s: %s is not readable by other users (mode %04o)"
                      % (where, path, mode))


def find_gateway(objs):
    for w in objs.workloads():
        for c in pod_spec(w)["containers"]:
            if "--config" in (c.get("args") or []) + (c.get("command") or []):
                return w, c
    return None, None


def config_path(c):
    args = (c.get("command") or []) + (c.get("args") or [])
    return args[args.index("--config") + 1]


def host_port(addr):
    m = re.match(r"^\[?([^\]]*)\]?:(\d+)$", addr)
    return (m.group(1), int(m.group(2))) if m else (None, None)


CONFIG_FILES = ("tls.cert", "tls.key", "tls.client_ca", "policy_file", "upstream.ca_file",
                "upstream.api_key_file", "upstream.pinned_pubkey", "audit.hmac_key_file",
                "audit.signing_key_file")
CONFIG_ENVS = ("upstream.api_key_env", "store.password_env", "audit.hmac_key_env")


def dig(cfg, dotted):
    for part in dotted.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


def check_gateway(objs, w, c, config_source):
    spec = pod_spec(w)
    where = "%s/%s" % (w["kind"], w["metadata"]["name"])
    files = mounted_files(objs, spec, c, where)
    user = PodUser(spec, c)
    path = config_path(c)
    if not check(path in files, "%s: its --config %s is a mounted file" % (where, path)):
        return None
    cfg = json.loads(files[path][0])
    cfg_dir = os.path.dirname(path)

    # The files and variables the config names.
    for key in CONFIG_FILES:
        val = dig(cfg, key)
        if not isinstance(val, str) or val.startswith("sha256//"):
            continue
        full = os.path.normpath(os.path.join(cfg_dir, val))
        if check(full in files, "%s: %s %s is a mounted file" % (where, key, full)):
            _, owner, group, mode, _, _ = files[full]
            check(user.can_read(owner, group, mode), "%s: %s is readable by uid %s" % (where, key, user.uid))
    env = {e["name"]: e for e in c.get("env") or []}
    for key in CONFIG_ENVS:
        val = dig(cfg, key)
        if val is not None:
            check(val in env, "%s: %s names %s, which the container sets" % (where, key, val))

    # Large create bodies are set aside in limits.spool_dir (else $TMPDIR,
    # else /tmp): with a read-only root, that must be a writable volume.
    if (c.get("securityContext") or {}).get("readOnlyRootFilesystem"):
        spool = dig(cfg, "limits.spool_dir") or (env.get("TMPDIR") or {}).get("value") or "/tmp"
        spool = os.path.normpath(os.path.join(cfg_dir, spool))
        vols = {v["name"]: v for v in spec.get("volumes") or []}
        under = [m for m in c.get("volumeMounts") or []
                 if (spool + "/").startswith(m["mountPath"].rstrip("/") + "/")]
        mount = max(under, key=lambda m: len(m["mountPath"]), default=None)
        vol = vols.get(mount["name"], {}) if mount else {}
        check(mount is not None and not mount.get("readOnly") and
              ("emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol),
              "%s: the spool folder %s is a writable volume (the root file system is read-only)"
              % (where, spool))

    # Probes on the admin port, which is reachable from the node.
    admin_host, admin_port = host_port(cfg.get("admin_listen", ""))
    check(admin_port is not None and admin_host not in ("127.0.0.1", "::1", "localhost"),
          "%s: admin_listen %s is reachable by the kubelet" % (where, cfg.get("admin_listen")))
    for probe, want in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        check(g.get("path") == want and port_number(c, g.get("port")) == admin_port,
              "%s: %s is GET %s on the admin port %s (is %s on %s)"
              % (where, probe, want, admin_port, g.get("path"), port_number(c, g.get("port"))))
    _, listen_port = host_port(cfg.get("listen", "127.0.0.1:8080"))
    check(listen_port in [p["containerPort"] for p in c.get("ports") or []],
          "%s: the container declares the listen port %s" % (where, listen_port))

    # Stopping: the grace period outlasts the drain and the preStop pause.
    grace = spec.get("terminationGracePeriodSeconds", 30)
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command") or []
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    drain = cfg.get("shutdown_grace_ms", 10000) / 1000
    check(grace > drain + pause, "%s: terminationGracePeriodSeconds %s > shutdown_grace_ms %gs + preStop %ss"
          % (where, grace, drain, pause))

    # The PodDisruptionBudget.
    pdbs = [p for p in objs.of("PodDisruptionBudget") if selects(p["spec"].get("selector"), pod_labels(w))]
    if check(pdbs, "%s: a PodDisruptionBudget covers its pods" % where):
        replicas = w["spec"].get("replicas", 1)
        for p in pdbs:
            mina = p["spec"].get("minAvailable")
            maxu = p["spec"].get("maxUnavailable")
            check((isinstance(mina, int) and mina < replicas) or (isinstance(maxu, int) and maxu >= 1),
                  "PodDisruptionBudget/%s lets one of %d pods go (minAvailable %s, maxUnavailable %s)"
                  % (p["metadata"]["name"], replicas, mina, maxu))

    # The store.
    store = cfg.get("store") or {}
    if store.get("type") == "redis":
        check_redis(objs, w, c, store, config_source)
    return cfg


def check_redis(objs, gw, gc, store, config_source):
    m = re.match(r"^redis://([^:/]+)(?::(\d+))?(/\d+)?$", store.get("url", ""))
    if not check(m, "store.url %s is redis://host:port/db" % store.get("url")):
        return
    host, port = m.group(1), int(m.group(2) or 6379)
    svc = objs.get("Service", host.split(".")[0])
    if not check(svc is not None, "store.url names the Service %s" % host):
        return
    sports = [p for p in svc["spec"]["ports"] if p["port"] == port]
    check(sports, "Service/%s has port %d" % (host, port))
    redis = [w for w in objs.workloads() if service_selects(svc, pod_labels(w))]
    if not check(len(redis) == 1, "Service/%s selects one workload (%s)"
                 % (host, ", ".join(w["metadata"]["name"] for w in redis))):
        return
    rw = redis[0]
    spec = pod_spec(rw)
    rc = spec["containers"][0]
    where = "%s/%s" % (rw["kind"], rw["metadata"]["name"])
    rport = port_number(rc, sports[0].get("targetPort", port)) if sports else None
    check(rport is not None, "%s: Service/%s's target port is a port of the container" % (where, host))
    args = (rc.get("command") or []) + (rc.get("args") or [])

    # Persistence: AOF on a claim the redis user can write.
    aof = "--appendonly" in args and args[args.index("--appendonly") + 1] == "yes"
    check(aof, "%s: keeps an append-only file (--appendonly yes)" % where)
    data_dir = args[args.index("--dir") + 1] if "--dir" in args else "/data"
    mount = [mt for mt in rc.get("volumeMounts") or [] if mt["mountPath"] == data_dir]
    claims = [t["metadata"]["name"] for t in rw["spec"].get("volumeClaimTemplates") or []]
    claims += [v["name"] for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v]
    check(mount and mount[0]["name"] in claims,
          "%s: its data dir %s is a PersistentVolumeClaim" % (where, data_dir))
    user = PodUser(spec, rc)
    check(user.uid == 0 or user.fs_group is not None,
          "%s: the claim is writable by uid %s (fsGroup %s)" % (where, user.uid, user.fs_group))

    # The password: the same Secret key on both sides.
    penv = store.get("password_env")
    gref = None
    if penv:
        gref = next(((e.get("valueFrom") or {}).get("secretKeyRef") for e in gc.get("env") or []
                     if e["name"] == penv), None)
    rref = None
    if "--requirepass" in args:
        mv = re.match(r"^\$\((\w+)\)$", args[args.index("--requirepass") + 1])
        if mv:
            rref = next(((e.get("valueFrom") or {}).get("secretKeyRef") for e in rc.get("env") or []
                         if e["name"] == mv.group(1)), None)
    check(rref is not None, "%s: --requirepass comes from a Secret" % where)
    check(gref is not None and rref is not None and
          (gref["name"], gref["key"]) == (rref["name"], rref["key"]),
          "the gateway's store.password_env (%s) and Redis read the same Secret key (%s, %s)"
          % (penv, gref, rref))

    # The NetworkPolicies that select Redis: only the gateway, only its port.
    labels = pod_labels(rw)
    nps = [n for n in objs.of("NetworkPolicy") if selects(n["spec"].get("podSelector"), labels)]
    if not check(nps, "a NetworkPolicy selects the Redis pods"):
        return
    others = [pod_labels(w) for w in objs.workloads() if w is not gw]
    for n in nps:
        nwhere = "NetworkPolicy/%s" % n["metadata"]["name"]
        types = n["spec"].get("policyTypes") or (["Ingress"] if "ingress" in n["spec"] else [])
        check("Ingress" in types, "%s: isolates Redis's ingress" % nwhere)
        for i, rule in enumerate(n["spec"].get("ingress") or []):
            peers = rule.get("from") or []
            check(peers, "%s: ingress[%d] names its sources (an empty from admits everyone)" % (nwhere, i))
            for peer in peers:
                sel = peer.get("podSelector")
                check(sel is not None and set(peer) == {"podSelector"},
                      "%s: ingress[%d] admits pods of this namespace only (%s)" % (nwhere, i, sorted(peer)))
                check(selects(sel, pod_labels(gw)), "%s: ingress[%d] admits the gateway's pods" % (nwhere, i))
                check(not any(selects(sel, o) for o in others),
                      "%s: ingress[%d] admits no other workload's pods" % (nwhere, i))
            ports = rule.get("ports") or []
            check(ports and all(port_number(rc, p.get("port")) == rport for p in ports),
                  "%s: ingress[%d] admits the Redis port %s only" % (nwhere, i, rport))


def check_services(objs):
    for svc in objs.of("Service"):
        pods = [w for w in objs.workloads() if service_selects(svc, pod_labels(w))]
        where = "Service/%s" % svc["metadata"]["name"]
        if not check(pods, "%s: selects pods" % where):
            continue
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            check(all(any(port_number(c, tp) is not None for c in pod_spec(w)["containers"]) for w in pods),
                  "%s: target port %s is declared by its pods" % (where, tp))


# ---- the pod laid out, and the gateway run as its user ----


def materialize(objs, w, c, root, certs, drop_keys, quiet=False):
    """Writes the container's mounted files under root as the kubelet would;
    returns the config's path there."""
    spec = pod_spec(w)
    files = mounted_files(objs, spec, c, "materialize")
    mounts = sorted({m["mountPath"].rstrip("/") for m in c.get("volumeMounts") or []}, key=len, reverse=True)
    as_root = os.geteuid() == 0
    shutil.rmtree(root, ignore_errors=True)
    for path, (data, owner, group, mode, kind, name) in files.items():
        obj = objs.get(kind, name)
        if obj.get("type") == "kubernetes.io/tls" and b"-----BEGIN" not in data:
            base = os.path.basename(path)
            src = {"tls.crt": "server.pem", "tls.key": "server.key"}.get(base)
            if src:
                if not quiet:
                    note("Secret %s holds a placeholder; %s is the development %s" % (name, base, src))
                with open(os.path.join(certs, src), "rb") as f:
                    data = f.read()
        if path == config_path(c):
            cfg = json.loads(data)
            for key in drop_keys:
                parent, _, leaf = key.rpartition(".")
                (dig(cfg, parent) or {}).pop(leaf, None)
            text = json.dumps(cfg, indent=2)
            # One pass, so a path already moved under root (which may
            # itself begin with a mount path, /tmp) is not moved again.
            if mounts:
                text = re.sub('"(%s)/' % "|".join(re.escape(mp) for mp in mounts),
                              lambda m: '"%s%s/' % (root, m.group(1)), text)
            data = text.encode()
        dest = root + path
        d = os.path.dirname(dest)
        os.makedirs(d, exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        os.chmod(dest, mode)
        if as_root:
            os.chown(dest, owner, group)
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)
    return root + config_path(c)


def run_check(objs, w, c, workdir, gateway, certs, config_source):
    spec = pod_spec(w)
    user = PodUser(spec, c)
    bindir = os.path.join(workdir, "bin")
    os.makedirs(bindir, exist_ok=True)
    binary = os.path.join(bindir, "gateway")
    shutil.copy(gateway, binary)
    os.chmod(binary, 0o755)
    os.chmod(workdir, 0o755)
    env = {"PATH": "/usr/bin:/bin"}
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = object_data(objs.get("Secret", ref["name"]))[ref["key"]].decode()
    drop = []
    with open(config_source) as f:
        knows_password_env = '"store.password_env"' in f.read()
    while True:
        cfg = materialize(objs, w, c, os.path.join(workdir, "pod"), certs, drop, quiet=bool(drop))
        argv = [binary, "--config", cfg, "--check"]
        if os.geteuid() == 0 and shutil.which("setpriv"):
            argv = ["setpriv", "--reuid=%d" % user.uid, "--regid=%d" % user.gid,
                    "--groups=" + ",".join(str(g) for g in sorted(user.groups))] + argv
            who = "uid %d, groups %s" % (user.uid, sorted(user.groups))
        else:
            who = "this user (not root: the permissions were checked from the YAML only)"
        p = subprocess.run(argv, env=env, capture_output=True, text=True)
        if (p.returncode != 0 and not knows_password_env and not drop and
                "store.password_env: unknown key" in p.stderr):
            note("this gateway has no store.password_env yet (not in %s): the config is checked "
                 "without it; the manifests need it before they deploy" % config_source)
            drop = ["store.password_env"]
            continue
        break
    check(p.returncode == 0 and p.stdout.strip() == "configuration OK",
          "the gateway pod's config, policy and TLS files pass --check as %s%s"
          % (who, "" if p.returncode == 0 else ":\n" + p.stdout + p.stderr))
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("workdir")
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--config-source", required=True)
    a = ap.parse_args()

    with open(a.rendered) as f:
        objs = Objects(yaml.safe_load_all(f))
    print("%d objects: %s" % (len(objs.docs), ", ".join(sorted("%s/%s" % (d["kind"], d["metadata"]["name"])
                                                               for d in objs.docs))))
    for w in objs.workloads():
        check_workload_basics(objs, w)
    check_services(objs)
    w, c = find_gateway(objs)
    if check(w is not None, "a workload runs the gateway (--config)"):
        cfg = check_gateway(objs, w, c, a.config_source)
        if cfg is not None:
            run_check(objs, w, c, a.workdir, a.gateway, a.certs, a.config_source)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

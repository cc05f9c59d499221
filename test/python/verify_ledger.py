#!/usr/bin/env python3
"""An independent fedprofile ledger verifier, written from coordinator/src/ledger/SPEC.md and
the committed vectors alone (Python standard library plus `cryptography` for Ed25519).

Usage:
  verify_ledger.py vectors DIR              check chain.json and every case in cases.json
  verify_ledger.py chain FILE PUBKEY_HEX    verify every chain of a page/export/array file
Prints one JSON verdict per chain (or per case) and exits 0 when all agree / verify.
"""
import hashlib
import json
import math
import re
import sys
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
TOL = 1e-9
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
ORDERS = [round(1.1 + i * 0.1, 1) for i in range(99)] + list(range(11, 64)) + [128, 256, 512, 1024]
HEX = lambda n: re.compile("^[0-9a-f]{%d}$" % (2 * n))
LONE = re.compile("[\ud800-\udfff]")


# ---- SPEC §3: strict I-JSON reading ------------------------------------------------------
class Dup(dict):
    """An object in which a member name occurred twice."""


def _pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            out = Dup(d)
            out.dup = k
            return out
        d[k] = v
    return d


def _bad_constant(name):
    raise ValueError("not JSON: " + name)


def load_strict(text):
    return json.loads(text, object_pairs_hook=_pairs, parse_constant=_bad_constant, parse_float=float)


def ijson_violation(v, path="$"):
    if isinstance(v, Dup):
        return "%s: duplicate member %r" % (path, v.dup)
    if isinstance(v, dict):
        for k, x in v.items():
            if LONE.search(k):
                return "%s: lone surrogate in a member name" % path
            r = ijson_violation(x, path + "." + k)
            if r:
                return r
    elif isinstance(v, list):
        for i, x in enumerate(v):
            r = ijson_violation(x, "%s[%d]" % (path, i))
            if r:
                return r
    elif isinstance(v, str):
        if LONE.search(v):
            return "%s: lone surrogate" % path
    elif isinstance(v, bool) or v is None:
        return None
    elif isinstance(v, (int, float)):
        try:
            if not math.isfinite(float(v)):
                return "%s: number outside IEEE 754 double" % path
        except OverflowError:
            return "%s: number outside IEEE 754 double" % path
    return None


# ---- SPEC §4: RFC 8785 canonical JSON ------------------------------------------------------
def es_number(x):
    x = float(x)
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    r = repr(x)
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$", r)
    ip, fp, ex = m.group(1), m.group(2) or "", int(m.group(3) or 0)
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len((ip + fp).lstrip("0"))
    n = len(ip) + ex - lead
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    return digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))


ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def es_string(s):
    if LONE.search(s):
        raise ValueError("lone surrogate")
    return '"' + "".join(ESC.get(c, "\\u%04x" % ord(c) if ord(c) < 0x20 else c) for c in s) + '"'


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return es_number(v)
    if isinstance(v, str):
        return es_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    keys = sorted(v.keys(), key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(es_string(k) + ":" + jcs(v[k]) for k in keys) + "}"


def sha256_hex(v):
    return hashlib.sha256(jcs(v).encode("utf-8")).hexdigest()


def key_id(pk):
    return hashlib.sha256(pk).hexdigest()[:16]


# ---- SPEC §5: Ed25519 with RFC 8032's checks ------------------------------------------------
def canonical_point(b):
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    sign = b[31] >> 7
    return y < P and not (sign and y in (1, P - 1))


def ed_verify(pk, sig_hex, digest_hex):
    try:
        sig = bytes.fromhex(sig_hex)
        if len(sig) != 64 or len(pk) != 32:
            return False
        if int.from_bytes(sig[32:], "little") >= L or not canonical_point(sig[:32]) or not canonical_point(pk):
            return False
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, bytes.fromhex(digest_hex))
        return True
    except (InvalidSignature, ValueError):
        return False


# ---- SPEC §2: entry schema (member sets, strict) ---------------------------------------------
COMMON = {"v", "seq", "tenant", "model", "kind", "round", "timestamp", "accountant", "cumulative", "budget", "prevHash", "keyId", "hash", "signature"}
RELEASE_REQ = {"mechanism", "trustModel", "noise", "clipNorm", "modulusBits", "cohort", "sampling", "events"}
KINDS = {
    "round": (RELEASE_REQ, {"roundId", "release"}),
    "clip_quantile": (RELEASE_REQ | {"clipRelease"}, {"roundId"}),
    "policy": ({"policy"}, set()),
    "key_rotation": ({"rotation", "rotationSignature"}, set()),
    "publication": ({"publication"}, set()),
}
NESTED = {
    "accountant": ({"orders", "rdp"}, set()),
    "cumulative": ({"epsilon", "delta", "optimalOrder"}, set()),
    "budget": ({"epsilonCap", "remaining"}, set()),
    "noise": ({"sigma", "noiseMultiplier", "varianceActual"}, {"localStddev", "noiseShares"}),
    "cohort": ({"size", "survivors", "colluders"}, {"threshold"}),
    "sampling": ({"uniform", "rate"}, {"population"}),
    "release": ({"aggregateSha256"}, set()),
    "clipRelease": ({"previousClip", "nextClip", "targetQuantile", "learningRate", "countStddev", "noisyFraction", "accountedInSeq"}, set()),
    "policy": ({"source", "epsilonCap", "delta", "population"}, {"mechanism", "targetEpsilon", "minNoiseShares", "modulusBits", "clipNorm", "threatModel"}),
    "rotation": ({"previousPublicKey", "publicKey", "keyId"}, set()),
    "publication": ({"roundId", "roundSeq", "aggregateSha256", "modelVersion", "modelVersionSha256"}, set()),
}
EVENT = {
    "gaussian": {"kind", "noiseMultiplier"},
    "poisson_gaussian": {"kind", "samplingRate", "noiseMultiplier"},
    "distributed_discrete_gaussian": {"kind", "samplingRate", "gamma", "localStddev", "noiseShares", "l2Sensitivity", "beta", "dim"},
}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def intish(x):
    return num(x) and float(x).is_integer()


def schema_error(e):
    if not isinstance(e, dict) or e.get("kind") not in KINDS:
        return "not an object of a known kind"
    req, opt = KINDS[e["kind"]]
    keys = set(e)
    if not (COMMON | req) <= keys or keys - COMMON - req - opt:
        return "members %s" % sorted(keys ^ (COMMON | req) - opt)
    for name, (r, o) in NESTED.items():
        if name in e:
            x = e[name]
            if not isinstance(x, dict) or not r <= set(x) or set(x) - r - o:
                return "members of " + name
    if e["v"] != 1 or not intish(e["seq"]) or e["seq"] < 0 or not intish(e["round"]):
        return "v, seq or round"
    if not isinstance(e["tenant"], str) or not isinstance(e["model"], str) or not TS.match(str(e["timestamp"])):
        return "tenant, model or timestamp"
    for h in ("prevHash", "hash"):
        if not isinstance(e[h], str) or not HEX(32).match(e[h]):
            return h
    if not HEX(8).match(str(e["keyId"])) or not HEX(64).match(str(e["signature"])):
        return "keyId or signature"
    acc = e["accountant"]
    if acc["orders"] != "default" and not isinstance(acc["orders"], list):
        return "accountant.orders"
    if not isinstance(acc["rdp"], list) or not all(num(r) and r >= 0 for r in acc["rdp"]):
        return "accountant.rdp"
    if not (0 < e["cumulative"]["delta"] < 1) or e["budget"]["epsilonCap"] <= 0:
        return "cumulative or budget"
    if e["kind"] in ("round", "clip_quantile"):
        if not isinstance(e["events"], list):
            return "events"
        for c in e["events"]:
            if not isinstance(c, dict) or set(c) != {"event", "count"} or not intish(c["count"]) or c["count"] < 1:
                return "events[]"
            ev = c["event"]
            if not isinstance(ev, dict) or ev.get("kind") not in EVENT or set(ev) != EVENT[ev["kind"]]:
                return "events[].event (this verifier knows gaussian, poisson_gaussian and distributed_discrete_gaussian)"
    if e["kind"] == "key_rotation":
        r = e["rotation"]
        if not HEX(32).match(str(r["publicKey"])) or not HEX(32).match(str(r["previousPublicKey"])) or not HEX(64).match(str(e["rotationSignature"])):
            return "rotation"
    return None


# ---- SPEC §7.4: the accountant ----------------------------------------------------------------
def rounded_l2(c, beta, dim):
    b1 = c + math.sqrt(dim)
    if beta == 0:
        return b1
    sq = c * c + 0.25 * dim + math.sqrt(2 * math.log(1 / beta)) * (c + 0.5 * math.sqrt(dim))
    return min(b1, math.sqrt(sq))


def event_curve(ev):
    k = ev["kind"]
    if k in ("gaussian", "poisson_gaussian"):
        if k == "poisson_gaussian" and ev["samplingRate"] != 1:
            raise ValueError("subsampled events need dp_accounting's series (SPEC §7.4)")
        nm = ev["noiseMultiplier"]
        return [math.inf if nm == 0 else a / (2 * nm * nm) for a in ORDERS]
    if ev["samplingRate"] != 1:
        raise ValueError("subsampled events need the Zhu-Wang bound (SPEC §7.4)")
    scale = 1 / (ev["gamma"] + 1e-22)
    dim, beta = ev["dim"], ev["beta"]
    l2 = rounded_l2(ev["l2Sensitivity"] * scale, beta, dim) / scale
    l1 = (l2 * scale) * min(math.sqrt(dim), l2 * scale) / scale
    s = math.pi * ev["localStddev"] * scale
    tau = 0.0
    for j in range(1, ev["noiseShares"]):
        term = math.exp(-2 * s * s * (j / (j + 1)))
        tau += term
        if term == 0:
            break
    tau *= 10
    total = math.sqrt(ev["noiseShares"]) * ev["localStddev"]
    l1s, l2s = l1 / total, l2 / total

    def base(a):
        t1 = (a / 2) * l2s**2 + tau * dim
        t2 = (a / 2) * (l2s**2 + 2 * l1s * tau + tau**2 * dim)
        t3 = (a / 2) * (l2s + math.sqrt(dim) * tau) ** 2
        return min(t1, t2, t3)

    return [base(a if tau == 0 else math.ceil(a)) for a in ORDERS]


def rdp_to_epsilon(rdp, delta):
    best, best_i = math.inf, 0
    for i, (a, r) in enumerate(zip(ORDERS, rdp)):
        if r < 0 or delta * delta + math.expm1(-r) > 0:
            eps = 0.0
        elif a > 1.01:
            eps = r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        else:
            eps = math.inf
        if eps < best:
            best, best_i = eps, i
    return max(0.0, best), ORDERS[best_i]


def rel(a, b):
    return 0 if a == b else abs(a - b) / max(abs(b), 1e-300)


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---- SPEC §7: the verification algorithm ------------------------------------------------------
def verify(rows, trusted, expected_head=None, checkpoints=()):
    """rows: parsed values, or ("json", message) for a row that broke I-JSON.
    trusted: list of {"publicKey": hex, "revokedAt"?: iso}."""
    trust = {key_id(bytes.fromhex(k["publicKey"])): k for k in trusted}
    keys = {}
    for r in rows:
        if isinstance(r, dict) and r.get("kind") == "key_rotation" and isinstance(r.get("rotation"), dict):
            for h in (r["rotation"].get("previousPublicKey"), r["rotation"].get("publicKey")):
                if isinstance(h, str) and HEX(32).match(h):
                    keys[key_id(bytes.fromhex(h))] = bytes.fromhex(h)
    for kid, k in trust.items():
        keys[kid] = bytes.fromhex(k["publicKey"])
    rdp = [0.0] * len(ORDERS)
    prev, current, key_ids, entries = None, None, [], []
    policy, delta, cap_history, eps = None, None, [], 0.0

    def fail(i, reason, msg):
        return {"ok": False, "reason": reason, "index": i, "message": msg}

    for i, e in enumerate(rows):
        if isinstance(e, tuple):
            return fail(i, "json", e[1])
        err = schema_error(e)
        if err:
            return fail(i, "schema", err)
        if prev and (e["tenant"], e["model"]) != (prev["tenant"], prev["model"]):
            return fail(i, "scope", "another chain")
        if e["seq"] != i:
            return fail(i, "sequence", "expected seq %d" % i)
        if e["prevHash"] != (prev["hash"] if prev else GENESIS):
            return fail(i, "chain", "prevHash does not link")
        body = {k: v for k, v in e.items() if k not in ("hash", "signature", "rotationSignature")}
        try:
            h = sha256_hex(body)
        except ValueError as x:
            return fail(i, "json", str(x))
        if h != e["hash"]:
            return fail(i, "hash", "content hashes to " + h)
        if current and e["keyId"] != current[0]:
            return fail(i, "key", "not the chain's key")
        pk = current[1] if current else keys.get(e["keyId"])
        if pk is None:
            return fail(i, "untrusted", "key not pinned")
        if not current:
            current = (e["keyId"], pk)
            key_ids.append(e["keyId"])
        rev = trust.get(e["keyId"], {}).get("revokedAt")
        if rev and ts(e["timestamp"]) >= ts(rev):
            return fail(i, "revoked", "key revoked")
        if not ed_verify(pk, e["signature"], e["hash"]):
            return fail(i, "signature", "signature does not verify")
        release = e["kind"] in ("round", "clip_quantile")
        if e["kind"] == "key_rotation":
            new = bytes.fromhex(e["rotation"]["publicKey"])
            if key_id(new) != e["rotation"]["keyId"] or key_id(bytes.fromhex(e["rotation"]["previousPublicKey"])) != e["keyId"]:
                return fail(i, "key", "rotation keyIds")
            if not ed_verify(new, e["rotationSignature"], e["hash"]):
                return fail(i, "signature", "rotationSignature")
            current = (e["rotation"]["keyId"], new)
            key_ids.append(current[0])
        if not release and prev and e["round"] != prev["round"]:
            return fail(i, "event", "round counter")
        if e["kind"] == "policy":
            p = e["policy"]
            if e["budget"]["epsilonCap"] != p["epsilonCap"] or e["cumulative"]["delta"] != p["delta"]:
                return fail(i, "policy", "entry is not its policy")
            if delta is not None and p["delta"] != delta:
                return fail(i, "policy", "delta changed")
            policy = (p["epsilonCap"], p["delta"])
            cap_history.append({"seq": e["seq"], "epsilonCap": p["epsilonCap"]})
        elif policy and (e["budget"]["epsilonCap"], e["cumulative"]["delta"]) != policy:
            return fail(i, "policy", "cap or delta off the record")
        if e["kind"] == "publication":
            p = e["publication"]
            t = entries[p["roundSeq"]] if p["roundSeq"] < e["seq"] else None
            if not t or t["kind"] != "round" or t.get("roundId") != p["roundId"]:
                return fail(i, "publication", "no such round entry")
            if t.get("release", {}).get("aggregateSha256") != p["aggregateSha256"]:
                return fail(i, "publication", "aggregate hash")
        if release:
            s = e["sampling"]
            if not s["uniform"] and s["rate"] != 1:
                return fail(i, "sampling", "rate for a non-uniform cohort")
            if s["uniform"] and "population" not in s:
                return fail(i, "sampling", "uniform without population")
            allowed = s["rate"] if s["uniform"] else 1
            for c in e["events"]:
                ev = c["event"]
                if "samplingRate" in ev and ev["samplingRate"] != allowed:
                    return fail(i, "sampling", "event rate")
                if ev["kind"] == "distributed_discrete_gaussian":
                    if e["trustModel"] != "distributed" or e["mechanism"] != "distributed_discrete_gaussian":
                        return fail(i, "event", "trust model")
                    if ev["noiseShares"] > e["cohort"]["survivors"] - e["cohort"]["colluders"]:
                        return fail(i, "event", "noise shares")
                    if ev["noiseShares"] != e["noise"].get("noiseShares") or rel(ev["localStddev"], e["noise"].get("localStddev", math.nan)) > TOL:
                        return fail(i, "event", "noise record")
                    if rel(ev["l2Sensitivity"], e["clipNorm"]) > TOL:
                        return fail(i, "event", "sensitivity")
                else:
                    if e["trustModel"] != "central":
                        return fail(i, "event", "trust model")
                    if rel(ev["noiseMultiplier"], e["noise"]["noiseMultiplier"]) > TOL:
                        return fail(i, "event", "noise multiplier")
            if e["kind"] == "clip_quantile":
                if e["clipRelease"]["accountedInSeq"] >= e["seq"]:
                    return fail(i, "event", "quantile release")
            elif not e["events"]:
                return fail(i, "event", "no event")
            for c in e["events"]:
                try:
                    curve = event_curve(c["event"])
                except ValueError as x:
                    return fail(i, "accountant", str(x))
                rdp = [r + c["count"] * x for r, x in zip(rdp, curve)]
        if e["accountant"]["orders"] != "default" or len(e["accountant"]["rdp"]) != len(ORDERS):
            return fail(i, "accountant", "orders")
        for a, b in zip(e["accountant"]["rdp"], rdp):
            if rel(a, b) > TOL:
                return fail(i, "accountant", "rdp %r recomputed %r" % (a, b))
        eps, _ = rdp_to_epsilon(rdp, e["cumulative"]["delta"])
        if rel(e["cumulative"]["epsilon"], eps) > TOL:
            return fail(i, "epsilon", "claims %r, events give %r" % (e["cumulative"]["epsilon"], eps))
        b = e["budget"]
        if abs(b["remaining"] - (b["epsilonCap"] - eps)) > TOL * max(1, b["epsilonCap"]):
            return fail(i, "budget", "remaining")
        delta = e["cumulative"]["delta"]
        entries.append(e)
        prev = e
    if entries and not any(k in trust for k in key_ids):
        return fail(0, "untrusted", "no key of the chain is pinned")
    if expected_head:
        s = expected_head["seq"]
        if s >= len(entries) or entries[s]["hash"] != expected_head["hash"]:
            return fail(min(s, len(rows)), "head", "expected head missing")
    chain_keys = {}
    for e in entries:
        if e["keyId"] in keys:
            chain_keys[e["keyId"]] = keys[e["keyId"]]
        if e["kind"] == "key_rotation":
            chain_keys[e["rotation"]["keyId"]] = bytes.fromhex(e["rotation"]["publicKey"])
    checked = 0
    for cp in checkpoints:
        if prev and (cp["tenant"], cp["model"]) != (prev["tenant"], prev["model"]):
            continue
        body = {k: v for k, v in cp.items() if k != "signature"}
        k = chain_keys.get(cp["keyId"])
        if cp.get("type") != "fedprofile-ledger-checkpoint" or not k or not ed_verify(k, cp["signature"], sha256_hex(body)):
            continue
        if cp["seq"] >= len(entries):
            return fail(len(rows), "checkpoint", "entries removed")
        if entries[cp["seq"]]["hash"] != cp["hash"]:
            return fail(cp["seq"], "checkpoint", "history rewritten")
        checked += 1
    return {"ok": True, "entries": len(rows), "headHash": prev["hash"] if prev else None, "epsilon": eps,
            "keyIds": key_ids, "capHistory": cap_history, "checkpoints": checked}


def rows_of(text):
    """SPEC §3: an array of entries, or a document with `entries`; a row breaking I-JSON is marked."""
    doc = load_strict(text)
    rows = doc if isinstance(doc, list) else doc["entries"]
    out = []
    for r in rows:
        bad = ijson_violation(r)
        out.append(("json", bad) if bad else r)
    return out


def main(argv):
    if argv[1] == "vectors":
        d = argv[2]
        chain = load_strict(open(d + "/chain.json", encoding="utf-8").read())
        results, ok = [], True
        v = verify(chain["entries"], chain["trusted"], checkpoints=chain["checkpoints"])
        want = chain["expect"]
        agree = v["ok"] and v["headHash"] == want["headHash"] and v["keyIds"] == want["keyIds"] \
            and v["capHistory"] == want["capHistory"] and rel(v["epsilon"], want["epsilon"]) <= TOL and v["checkpoints"] == 2
        ok &= agree
        results.append({"name": "chain", "agree": agree, "verdict": v})
        cases = load_strict(open(d + "/cases.json", encoding="utf-8").read())["cases"]
        for c in cases:
            v = verify(rows_of(c["text"]), c["trusted"], c.get("expectedHead"), c.get("checkpoints", []))
            agree = (not v["ok"]) and v["reason"] == c["expect"]["reason"] and v["index"] == c["expect"]["index"]
            ok &= agree
            results.append({"name": c["name"], "agree": agree, "verdict": v})
        print(json.dumps({"ok": ok, "results": results}))
        return 0 if ok else 1
    if argv[1] == "chain":
        rows = rows_of(open(argv[2], encoding="utf-8").read())
        chains = {}
        for r in rows:
            k = (r.get("tenant"), r.get("model")) if isinstance(r, dict) else list(chains)[-1] if chains else ("?", "?")
            chains.setdefault(k, []).append(r)
        out = {"%s/%s" % k: verify(v, [{"publicKey": argv[3]}]) for k, v in chains.items()}
        print(json.dumps(out))
        return 0 if all(v["ok"] for v in out.values()) else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

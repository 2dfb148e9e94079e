# SPDX-License-Identifier: Apache-2.0
"""A strict parser of the Prometheus text exposition format (version 0.0.4), written
from the format's rules (prometheus.io/docs/instrumenting/exposition_formats), to check
what mse-coordinator and mse-bootstrap --metrics serve, independently of their C code:

- a sample line is NAME[{LABEL="VALUE",...}] VALUE [TIMESTAMP]; names match
  [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not starting "__"),
  label values escape only \\\\, \\" and \\n; a value is a Go float (or NaN, +Inf, -Inf);
- "# HELP NAME text" and "# TYPE NAME counter|gauge|histogram|summary|untyped" at most
  once per family, TYPE before the family's first sample; other # lines are comments;
- a family's samples are contiguous; no (name, labels) twice;
- histograms: NAME_bucket with an "le" label, cumulative counts non-decreasing in le,
  an le="+Inf" bucket equal to NAME_count, and NAME_sum; counters are >= 0;
- every line, the last included, ends with a line feed.
parse_prometheus(text) returns {family: {"type", "help", "samples": [(name, labels,
value)]}} or raises ValueError naming the line."""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _float(s, where):
    if s in ("NaN",):
        return math.nan
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError(f"{where}: value {s!r} is not a float")
    return float(s)


def _labels(s, where):
    out, i = {}, 0
    while i < len(s):
        m = re.compile(LABEL + r'="').match(s, i)
        if not m:
            raise ValueError(f"{where}: bad label at {s[i:]!r}")
        name = s[i:m.end() - 2]
        if name.startswith("__"):
            raise ValueError(f"{where}: reserved label name {name!r}")
        i = m.end()
        val = []
        while True:
            if i >= len(s):
                raise ValueError(f"{where}: unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError(f"{where}: bad escape \\{nxt}")
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError(f"{where}: raw line feed in a label value")
            else:
                val.append(c)
                i += 1
        if name in out:
            raise ValueError(f"{where}: label {name!r} twice")
        out[name] = "".join(val)
        if i < len(s):
            if s[i] != ",":
                raise ValueError(f"{where}: expected ',' between labels, got {s[i]!r}")
            i += 1
    return out


def _family(name, types):
    for suf in ("_bucket", "_sum", "_count"):
        base = name[:-len(suf)] if name.endswith(suf) else None
        if base and types.get(base) in ("histogram", "summary"):
            return base
    return name


def parse_prometheus(text):
    if text and not text.endswith("\n"):
        raise ValueError("the last line does not end with a line feed")
    fams, types, helps, seen, done = {}, {}, {}, set(), set()
    current = None
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {no}"
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r")(?: (.*))?", line)
            if not m:
                continue  # a comment
            kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
            if kind == "TYPE":
                if name in types:
                    raise ValueError(f"{where}: second TYPE for {name}")
                if name in fams:
                    raise ValueError(f"{where}: TYPE for {name} after its samples")
                if rest not in TYPES:
                    raise ValueError(f"{where}: unknown type {rest!r}")
                types[name] = rest
            else:
                if name in helps:
                    raise ValueError(f"{where}: second HELP for {name}")
                if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                    raise ValueError(f"{where}: bad escape in HELP")
                helps[name] = rest.replace("\\n", "\n").replace("\\\\", "\\")
            continue
        if not line.strip():
            continue
        m = re.fullmatch(r"(" + NAME + r")(?:\{(.*)\})? (\S+)(?: (-?\d+))?", line)
        if not m:
            raise ValueError(f"{where}: not a sample line: {line!r}")
        name, labels = m.group(1), _labels(m.group(2) or "", where)
        value = _float(m.group(3), where)
        fam = _family(name, types)
        if fam != current:
            if fam in done:
                raise ValueError(f"{where}: samples of {fam} are not contiguous")
            if current:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError(f"{where}: {key} twice")
        seen.add(key)
        if types.get(fam) == "counter" and not value >= 0:
            raise ValueError(f"{where}: counter {name} is {value}")
        f = fams.setdefault(fam, {"type": types.get(fam, "untyped"), "help": None,
                                  "samples": []})
        f["samples"].append((name, labels, value))
    for fam, f in fams.items():
        f["help"] = helps.get(fam)
        if f["type"] == "histogram":
            _check_histogram(fam, f["samples"])
    return fams


def _check_histogram(fam, samples):
    series = {}
    for name, labels, v in samples:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                raise ValueError(f"{fam}: a bucket without le")
            s["buckets"].append((_float(labels["le"], fam), v))
        elif name == fam + "_sum":
            s["sum"] = v
        elif name == fam + "_count":
            s["count"] = v
        else:
            raise ValueError(f"{fam}: unexpected sample {name} in a histogram")
    for rest, s in series.items():
        b = sorted(s["buckets"])
        if not b or b[-1][0] != math.inf:
            raise ValueError(f"{fam}{rest}: no le=\"+Inf\" bucket")
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise ValueError(f"{fam}{rest}: buckets are not cumulative")
        if s["count"] is None or s["sum"] is None:
            raise ValueError(f"{fam}{rest}: _count or _sum missing")
        if b[-1][1] != s["count"]:
            raise ValueError(f"{fam}{rest}: +Inf bucket {b[-1][1]} != _count {s['count']}")

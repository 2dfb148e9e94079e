# SPDX-License-Identifier: Apache-2.0
"""Shared code of the Gramine stand-in (tests/gramine-standin/): small
scripts named gramine-manifest, gramine-sgx-sign and gramine-sgx that the
tests put first on PATH, so that `mse spawn --sgx` and `mse deploy --sgx`
run their real code path on a machine without SGX or Gramine.

They check what reaches them the way Gramine 1.9 documents it
(Documentation/manpages/*.rst and manifest-syntax.rst; the schema is the
one `gramine-manifest --check` enforces, written here from the documented
keys), and log every command line to $GRAMINE_STANDIN_LOG (JSON lines) so
the tests can assert on them.

What differs from Gramine, on purpose:
  - MRENCLAVE is a stand-in: SHA-256 over a tag and the expanded manifest
    (which holds a SHA-256 per trusted file). Trusted files given by a
    relative URI (the instance's own: mse-bootstrap, app/) are hashed by
    content; absolute system directories (the libraries, Python) are hashed
    by their listing (path, size), to keep the tests fast.
  - .manifest.sgx is JSON, not TOML.
  - gramine-sgx does not encrypt the encrypted mounts: it maps every mount
    path to its host directory in the arguments, environment and start
    directory, and runs mse-bootstrap directly with an attestation
    directory served by a quoting helper that puts the SIGSTRUCT's
    MRENCLAVE, MRSIGNER, ISVPRODID and ISVSVN into a simulation quote
    (`mse sim quote`): verifiers accept it only with the simulation root.
"""
import hashlib
import json
import os
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "helpers"))
import sigstruct_py  # noqa: E402

VERSION = os.environ.get("GRAMINE_STANDIN_VERSION", "Gramine 1.9 (mse-c test stand-in)")
TAG = b"mse-c/gramine-standin/mrenclave/v1"


def fail(tool, msg, code=1):
    print(f"{tool}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def log_call(tool, argv, **extra):
    path = os.environ.get("GRAMINE_STANDIN_LOG")
    if not path:
        return
    rec = {"tool": tool, "argv": argv, "cwd": os.getcwd(), "time": time.time(), **extra}
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def pkglibdir():
    """Where the stand-in's 'Gramine installation' lives (libsysdb.so, runtime/glibc, libpal.so)."""
    d = os.environ.get("GRAMINE_STANDIN_PKGLIBDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gramine-standin", "lib")
    rt = os.path.join(d, "runtime", "glibc")
    if not os.path.isdir(rt):
        os.makedirs(rt, exist_ok=True)
        for name, content in (("libsysdb.so", b"stand-in libos\n"), ("sgx/libpal.so", b"stand-in pal\n"),
                              ("runtime/glibc/libc.so.6", b"stand-in glibc\n")):
            p = os.path.join(d, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(content)
    return d


# ---- the manifest schema (Gramine 1.9, manifest-syntax.rst) -------------
STR, BOOL, INT = str, bool, int
SIZE = "size"  # "256M", "4G"...


def _mount_ok(m):
    if not isinstance(m, dict):
        return "expected a table"
    t = m.get("type", "chroot")
    allowed = {"chroot": {"type", "path", "uri"},
               "encrypted": {"type", "path", "uri", "key_name", "enable_recovery"},
               "tmpfs": {"type", "path", "uri"},
               "untrusted_shm": {"type", "path", "uri"}}
    if t not in allowed:
        return f"unknown mount type {t!r}"
    extra = set(m) - allowed[t]
    if extra:
        return f"unknown keys {sorted(extra)} for type {t!r}"
    if not isinstance(m.get("path"), str) or not m["path"].startswith("/"):
        return "path must be an absolute path (must begin with '/')"
    if t != "tmpfs" and not (isinstance(m.get("uri"), str) and m["uri"].startswith("file:")):
        return "uri must be a file: URI"
    if "key_name" in m and not isinstance(m["key_name"], str):
        return "key_name must be a string"
    return None


SCHEMA = {
    "libos": {"entrypoint": STR, "check_invalid_pointers": BOOL},
    "loader": {"entrypoint": {"uri": STR, "sha256": STR}, "argv": [STR], "argv_src_file": STR,
               "env": "env", "env_src_file": STR, "insecure__use_cmdline_argv": BOOL,
               "insecure__use_host_env": BOOL, "insecure__disable_aslr": BOOL, "log_file": STR,
               "log_level": ("none", "error", "warning", "debug", "trace", "all"), "uid": INT, "gid": INT},
    "fs": {"mounts": "mounts", "root": "mount", "start_dir": STR, "insecure__keys": {"*": STR}},
    "sgx": {"allowed_files": [STR], "debug": BOOL, "edmm_enable": BOOL, "enable_stats": BOOL,
            "enclave_size": SIZE, "file_check_policy": ("strict", "allow_all_but_log"),
            "insecure__rpc_thread_num": INT, "isvprodid": INT, "isvsvn": INT, "max_threads": INT,
            "preheat_enclave": BOOL, "remote_attestation": ("none", "dcap"),
            "trusted_files": [STR], "use_exinfo": BOOL, "vtune_profile": BOOL,
            "seal_key": {"flags_mask": STR, "xfrm_mask": STR, "misc_mask": STR},
            "cpu_features": {"*": STR}, "insecure__allow_memfaults_without_exinfo": BOOL,
            "profile": {"enable": STR, "mode": STR, "with_stack": BOOL, "frequency": INT}},
    "sys": {"allowed_ioctls": "any", "brk": {"max_size": SIZE}, "disallow_subprocesses": BOOL,
            "enable_extra_runtime_domain_names_conf": BOOL, "enable_sigterm_injection": BOOL,
            "experimental__enable_flock": BOOL, "insecure__allow_eventfd": BOOL, "ioctl_structs": "any",
            "debug__mock_syscalls": "any", "stack": {"size": SIZE}, "fds": {"limit": INT}},
}
REQUIRED = [("libos", "entrypoint"), ("loader", "entrypoint", "uri"), ("fs", "mounts")]


def _check(value, spec, where, errors):
    if spec == "any":
        return
    if spec is STR:
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string, got {type(value).__name__}")
    elif spec is BOOL:
        if not isinstance(value, bool):
            errors.append(f"{where}: expected true or false, got {value!r}")
    elif spec is INT:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer, got {value!r}")
    elif spec == SIZE:
        if not (isinstance(value, str) and value[:-1].isdigit() and value[-1] in "KMG"):
            errors.append(f"{where}: expected a size such as \"256M\", got {value!r}")
    elif isinstance(spec, tuple):
        if value not in spec:
            errors.append(f"{where}: expected one of {list(spec)}, got {value!r}")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array, got {value!r}")
        else:
            for i, v in enumerate(value):
                _check(v, spec[0], f"{where}[{i}]", errors)
    elif spec == "env":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a table")
        else:
            for k, v in value.items():
                if not (isinstance(v, str) or (isinstance(v, dict) and (set(v) == {"value"} or v == {"passthrough": True}))):
                    errors.append(f"{where}.{k}: expected a string, {{value = ...}} or {{passthrough = true}}")
    elif spec == "mounts":
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array of mounts")
        else:
            for i, m in enumerate(value):
                e = _mount_ok(m)
                if e:
                    errors.append(f"{where}[{i}]: {e}")
    elif spec == "mount":
        pass
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a table, got {value!r}")
            return
        for k, v in value.items():
            sub = spec.get(k, spec.get("*"))
            if sub is None:
                errors.append(f"{where}.{k}: unknown manifest key (not in Gramine 1.9's schema)")
            else:
                _check(v, sub, f"{where}.{k}", errors)


def check_manifest(m):
    """Errors of a parsed manifest against the documented schema, [] if none."""
    errors = []
    for k, v in m.items():
        if k not in SCHEMA:
            errors.append(f"{k}: unknown manifest key (not in Gramine 1.9's schema)")
        else:
            _check(v, SCHEMA[k], k, errors)
    for path in REQUIRED:
        d = m
        for k in path:
            if not isinstance(d, dict) or k not in d:
                errors.append(f"{'.'.join(path)}: required")
                break
            d = d[k]
    loader = m.get("loader", {})
    if sum(k in loader for k in ("argv", "argv_src_file", "insecure__use_cmdline_argv")) > 1:
        errors.append("loader.argv, loader.argv_src_file and loader.insecure__use_cmdline_argv "
                      "are mutually exclusive")
    return errors


# ---- trusted files and the stand-in measurement --------------------------
def _file_sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _listing_sha(path):
    st = os.stat(path)
    return hashlib.sha256(f"listing:{path}:{st.st_size}".encode()).hexdigest()


def expand_trusted(uris):
    """[(uri, sha256)] for every file under the trusted URIs, as gramine-sgx-sign expands them."""
    out = []
    for uri in uris:
        if not uri.startswith("file:"):
            raise ValueError(f"trusted file {uri!r}: expected a file: URI")
        path = uri[5:]
        absolute = path.startswith("/")
        digest = _listing_sha if absolute else _file_sha
        if uri.endswith("/"):
            if not os.path.isdir(path):
                raise ValueError(f"trusted directory {uri!r} does not exist (cwd {os.getcwd()})")
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    p = os.path.join(root, name)
                    if os.path.isfile(p):
                        out.append(("file:" + p, digest(p)))
        else:
            if not os.path.isfile(path):
                raise ValueError(f"trusted file {uri!r} does not exist (cwd {os.getcwd()})")
            out.append((uri, digest(path)))
    return out


def measure(manifest_sgx):
    blob = json.dumps(manifest_sgx, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(TAG + blob).digest()

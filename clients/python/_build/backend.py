"""The package's build backend (PEP 517 and PEP 660), standard library only.

Why a backend of our own: `pip install ./clients/python` must work on a
machine without network access.  pip builds a local directory through the
backend named in pyproject.toml, and in an isolated environment it first
installs that backend's requirements from an index; setuptools also needs
the separate `wheel` package to build a wheel, which many Python installs
lack.  This backend requires nothing, so pip has nothing to download and
the build works offline, with or without build isolation.

What it builds.  A pure-Python wheel (py3-none-any) holding the deltamemory
package and its .dist-info (METADATA from pyproject.toml's [project] table
and README.md, WHEEL, RECORD with SHA-256 digests); an sdist holding the
sources, this backend and PKG-INFO; and for `pip install -e` an editable
wheel holding a .pth file that puts this directory on sys.path.  Archive
members get a fixed timestamp (SOURCE_DATE_EPOCH when set), so the same
sources give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "deltamemory"
TAG = "py3-none-any"


def _project():
    """The [project] table of pyproject.toml (tomllib from Python 3.11; a
    reader of the simple `key = "value"` lines this file uses before)."""
    path = os.path.join(ROOT, "pyproject.toml")
    try:
        import tomllib
    except ImportError:
        tomllib = None
    if tomllib is not None:
        with open(path, "rb") as f:
            return tomllib.load(f).get("project", {})
    out, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "project":
                m = re.match(r'^([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"\s*$', line)
                if m:
                    out[m.group(1)] = m.group(2)
    return out


def _names():
    p = _project()
    name = p.get("name", PACKAGE)
    version = p.get("version", "0")
    dist = re.sub(r"[-_.]+", "_", name).lower()
    return p, name, version, dist


def _metadata():
    p, name, version, _ = _names()
    lines = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version]
    if p.get("description"):
        lines.append("Summary: " + p["description"])
    if p.get("requires-python"):
        lines.append("Requires-Python: " + p["requires-python"])
    lic = p.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append("License: " + lic["text"])
    elif isinstance(lic, str):
        lines.append("License: " + lic)
    for c in p.get("classifiers", []) or []:
        lines.append("Classifier: " + c)
    if p.get("keywords"):
        lines.append("Keywords: " + ",".join(p["keywords"]))
    for label, url in (p.get("urls") or {}).items():
        lines.append("Project-URL: %s, %s" % (label, url))
    body = ""
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _wheel_file():
    return ("Wheel-Version: 1.0\nGenerator: deltamemory-build\nRoot-Is-Purelib: true\n"
            "Tag: %s\n" % TAG).encode("ascii")


def _sources():
    """(archive name, path) of every file of the package, sorted."""
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f == "py.typed":
                path = os.path.join(d, f)
                out.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    return out


def _stamp():
    return int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01


def _digest(data):
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + h.decode("ascii")


def _write_wheel(wheel_directory, members):
    """members: (name, bytes); the dist-info files and RECORD are added."""
    _, _, version, dist = _names()
    info = "%s-%s.dist-info" % (dist, version)
    members = list(members) + [(info + "/METADATA", _metadata()),
                               (info + "/WHEEL", _wheel_file())]
    record = "".join("%s,%s,%d\n" % (n, _digest(b), len(b)) for n, b in members)
    record += info + "/RECORD,,\n"
    members.append((info + "/RECORD", record.encode("utf-8")))
    filename = "%s-%s-%s.whl" % (dist, version, TAG)
    when = time.gmtime(max(_stamp(), 315532800))[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            zi = zipfile.ZipInfo(name, when)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return filename


# ------------------------------------------------------------ PEP 517 hooks

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _, _, version, dist = _names()
    info = "%s-%s.dist-info" % (dist, version)
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "wb") as f:
        f.write(_metadata())
    with open(os.path.join(metadata_directory, info, "WHEEL"), "wb") as f:
        f.write(_wheel_file())
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    members = []
    for name, path in _sources():
        with open(path, "rb") as f:
            members.append((name, f.read()))
    return _write_wheel(wheel_directory, members)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (ROOT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("_%s_editable.pth" % PACKAGE, pth)])


def build_sdist(sdist_directory, config_settings=None):
    _, _, version, dist = _names()
    top = "%s-%s" % (dist, version)
    files = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
             ("README.md", os.path.join(ROOT, "README.md")),
             ("_build/backend.py", os.path.abspath(__file__))] + _sources()
    filename = top + ".tar.gz"
    meta = _metadata()
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz",
                      format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(top + "/" + name)
            ti.size = len(data)
            ti.mtime = _stamp()
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
        for name, path in files:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    add(name, f.read())
        add("PKG-INFO", meta)
    return filename

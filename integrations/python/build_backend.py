"""A minimal PEP 517 build backend using only the standard library: it packs the ``drover``
package into a pure-Python wheel (and an sdist). PyPI is not needed to install the client,
and neither are setuptools or wheel."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "drover"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.abspath(__file__))
DIST_INFO = "%s-%s.dist-info" % (NAME, VERSION)

METADATA = """Metadata-Version: 2.1
Name: drover
Version: %s
Summary: Python client of the Drover render farm manager's HTTP API (standard library only)
License: Apache-2.0
Requires-Python: >=3.7
""" % VERSION

WHEEL = """Wheel-Version: 1.0
Generator: drover-build-backend
Root-Is-Purelib: true
Tag: py3-none-any
"""


def _package_files():
    root = os.path.join(HERE, NAME)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield path, os.path.relpath(path, HERE).replace(os.sep, "/")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "w") as f:
        f.write(METADATA)
    with open(os.path.join(target, "WHEEL"), "w") as f:
        f.write(WHEEL)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    filename = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for path, arcname in _package_files():
            with open(path, "rb") as f:
                data = f.read()
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
            arcname = "%s/%s" % (DIST_INFO, name)
            data = text.encode("utf-8")
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        records.append("%s/RECORD,," % DIST_INFO)
        z.writestr("%s/RECORD" % DIST_INFO, "\n".join(records) + "\n")
    return filename


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for name in ("pyproject.toml", "build_backend.py"):
            tar.add(os.path.join(HERE, name), arcname="%s/%s" % (base, name))
        for path, arcname in _package_files():
            tar.add(path, arcname="%s/%s" % (base, arcname))
        info = tarfile.TarInfo("%s/PKG-INFO" % base)
        data = METADATA.encode("utf-8")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return filename

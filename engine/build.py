"""Build sipcli's pjsua2 engine: pjproject 2.15.1 with sipcli's config_site.h and patches, as a wheel.

The wheel installs the `pjsua2` module in place of the PyPI one (distribution pjsua2-python, version
2.15.1.post1+sipcli). Usage: python engine/build.py --source pjproject-2.15.1.tar.gz [--out DIR] [--install]

Work happens in a cache directory (default ~/.cache/sipcli-engine): one build tree per pjproject source,
reused between runs so that a changed patch recompiles only what it touches, and one wheel per hash of
source, configuration, patches and Python; an unchanged hash reuses the wheel without building.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG_SITE = HERE / "config_site.h"
PATCHES = HERE / "patches"
PJPROJECT_VERSION = "2.15.1"
WHEEL_VERSION = f"{PJPROJECT_VERSION}.post1+sipcli"
MARKER = "sipcli_build.json"
# Bumped when the way the tree is built changes, so that no wheel of an older recipe is reused.
RECIPE = "1"
CONFIGURE_ARGS = (
    "--disable-shared", "--disable-sound", "--disable-video", "--enable-epoll",
    "--with-ssl", "--with-opus", "--disable-bcg729", "--disable-opencore-amr",
    "--disable-libyuv", "--disable-libwebrtc", "--disable-sdl", "--disable-ffmpeg", "--disable-v4l2",
    "--disable-openh264", "--disable-vpx",
)
CFLAGS = "-O2 -fPIC"
# Debian packages the build needs, and the command each one provides (checked before building).
DEBIAN_PACKAGES = {
    "build-essential": "g++", "libssl-dev": None, "libopus-dev": None, "swig": "swig", "patch": "patch",
    "python3-dev": None, "binutils": "strip",
}


class BuildError(Exception):
    """A build step failed; the message says which and where its log is."""


def log(message: str) -> None:
    print(f"engine: {message}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def missing_packages() -> list[str]:
    """Debian packages of DEBIAN_PACKAGES that are not installed (all of them if dpkg is absent)."""
    missing = []
    for package in DEBIAN_PACKAGES:
        try:
            result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                    capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return list(DEBIAN_PACKAGES)
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def ensure_packages(install: bool) -> None:
    missing = missing_packages()
    if not missing:
        return
    command = "apt-get install -y " + " ".join(missing)
    if not install:
        # A non-Debian host may still have the tools: only stop when a command itself is absent.
        absent = [p for p in missing if DEBIAN_PACKAGES[p] and shutil.which(DEBIAN_PACKAGES[p]) is None]
        if absent:
            raise BuildError(f"missing build packages {' '.join(missing)}: run `{command}` as root "
                             "or pass --install-deps as root")
        log(f"warning: Debian packages not installed: {' '.join(missing)} (continuing)")
        return
    if os.geteuid() != 0:
        raise BuildError(f"--install-deps needs root; run `{command}` as root")
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def patch_files(patch: Path) -> list[str]:
    """Paths (relative to the pjproject root) that a -p1 unified diff changes."""
    files = []
    for line in patch.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\+\+\+ b/(\S+)", line)
        if match:
            files.append(match.group(1))
    return files


def source_version(tree: Path) -> str:
    text = (tree / "version.mak").read_text(encoding="utf-8")
    parts = [re.search(rf"export PJ_VERSION_{key}\s*:?=\s*(\S*)", text) for key in ("MAJOR", "MINOR", "REV")]
    return ".".join(m.group(1) for m in parts if m and m.group(1))


class Builder:
    def __init__(self, source: Path, cache: Path, jobs: int) -> None:
        self.source = source
        self.cache = cache
        self.jobs = jobs
        self.patches = sorted(PATCHES.glob("*.patch"))
        self.source_hash = sha256_file(source) if source.is_file() else sha256_tree(source)
        self.tree = cache / f"tree-{self.source_hash[:16]}"
        self.src = self.tree / "pjproject"
        self.state = self.tree / "sipcli"
        self.log_path = self.state / "build.log"
        self.py_tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
        self.platform_tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        self.ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (RECIPE, self.source_hash, CONFIG_SITE.read_text(encoding="utf-8"), " ".join(CONFIGURE_ARGS),
                     CFLAGS, self.py_tag, self.platform_tag, self.ext_suffix):
            digest.update(part.encode() + b"\0")
        for patch in self.patches:
            digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
        return digest.hexdigest()

    @property
    def wheel_name(self) -> str:
        return f"pjsua2_python-{WHEEL_VERSION}-{self.py_tag}-{self.py_tag}-{self.platform_tag}.whl"

    def run(self, args: list[str], cwd: Path, step: str) -> str:
        started = time.monotonic()
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(f"\n$ {' '.join(args)}  (in {cwd})\n")
            out.flush()
            result = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=out, text=True,
                                    env=dict(os.environ, LC_ALL="C"), check=False)
            out.write(result.stdout)
        if result.returncode != 0:
            tail = "".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-25:])
            raise BuildError(f"{step} failed (exit {result.returncode}); log: {self.log_path}\n{tail}")
        log(f"{step}: {time.monotonic() - started:.1f} s")
        return result.stdout

    def unpack(self) -> None:
        if (self.src / "version.mak").exists():
            return
        log(f"unpacking {self.source} into {self.tree}")
        self.tree.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=self.tree))
        if self.source.is_file():
            with tarfile.open(self.source) as archive:
                archive.extractall(staging, filter="data")
            roots = [p.parent for p in staging.glob("*/version.mak")] or [staging]
            root = roots[0]
        else:
            root = staging / "pjproject"
            shutil.copytree(self.source, root, ignore=shutil.ignore_patterns(".git"), symlinks=True)
        if not (root / "version.mak").exists():
            raise BuildError(f"{self.source} is not a pjproject source tree (no version.mak)")
        version = source_version(root)
        if version != PJPROJECT_VERSION:
            raise BuildError(f"{self.source} is pjproject {version}; sipcli's patches are for {PJPROJECT_VERSION}")
        root.rename(self.src)
        shutil.rmtree(staging)

    def apply_patches(self) -> None:
        """Bring every patched file to pristine + current patches, rewriting only files whose text changes."""
        pristine = self.state / "pristine"
        touched = {f for patch in self.patches for f in patch_files(patch)}
        for name in touched:
            saved = pristine / name
            if not saved.exists():
                saved.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.src / name, saved)
        with tempfile.TemporaryDirectory(dir=self.state) as staging:
            stage = Path(staging)
            for name in touched:
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(pristine / name, stage / name)
            for patch in self.patches:
                result = subprocess.run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
                                         "-d", str(stage), "-i", str(patch)],
                                        capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise BuildError(f"{patch.name} does not apply to pjproject {PJPROJECT_VERSION}:\n"
                                     f"{result.stdout}{result.stderr}")
            every = {str(p.relative_to(pristine)) for p in pristine.rglob("*") if p.is_file()}
            for name in sorted(every):
                wanted = (stage / name if name in touched else pristine / name).read_bytes()
                if (self.src / name).read_bytes() != wanted:
                    (self.src / name).write_bytes(wanted)
                    log(f"patched {name}")

    def write_if_changed(self, path: Path, data: bytes) -> bool:
        if path.exists() and path.read_bytes() == data:
            return False
        path.write_bytes(data)
        return True

    def configure(self) -> None:
        self.write_if_changed(self.src / "pjlib/include/pj/config_site.h", CONFIG_SITE.read_bytes())
        stamp = self.state / "configure.stamp"
        wanted = json.dumps([CONFIGURE_ARGS, CFLAGS])
        if stamp.exists() and stamp.read_text(encoding="utf-8") == wanted and (self.src / "build.mak").exists():
            return
        self.run(["./configure", *CONFIGURE_ARGS, f"CFLAGS={CFLAGS}", f"CXXFLAGS={CFLAGS}"], self.src, "configure")
        self.run(["make", "dep"], self.src, "make dep")
        stamp.write_text(wanted, encoding="utf-8")

    def compile_libraries(self) -> None:
        self.run(["make", f"-j{self.jobs}", "lib"], self.src, "make lib")

    def compile_bindings(self) -> Path:
        """SWIG wrapper, compiled once per change of its inputs, linked against the current libraries."""
        swig_dir = self.src / "pjsip-apps/src/swig/python"
        self.run(["make", "pjsua2_wrap.cpp"], swig_dir, "swig")

        def query(target: str) -> list[str]:
            out = subprocess.run(["make", "--no-print-directory", "-f", "helper.mak", target], cwd=swig_dir,
                                 capture_output=True, text=True, check=True).stdout
            return [line.strip() for line in out.splitlines() if line.strip()]

        cflags = query("cflags")
        include = sysconfig.get_paths()["include"]
        if not (Path(include) / "Python.h").exists():
            raise BuildError(f"Python.h not found in {include}: install python3-dev (or your Python's headers)")
        wrap_obj = swig_dir / f"pjsua2_wrap.{self.py_tag}.o"
        # The wrapper includes pjsua2's headers: a header a patch touches (or once touched, now restored)
        # recompiles it as config_site.h does.
        pristine = self.state / "pristine"
        patched_headers = [self.src / path.relative_to(pristine) for path in pristine.rglob("*")
                           if path.suffix in (".h", ".hpp")]
        headers = [self.src / "pjlib/include/pj/config_site.h", swig_dir / "pjsua2_wrap.cpp", *patched_headers]
        if not wrap_obj.exists() or any(h.stat().st_mtime > wrap_obj.stat().st_mtime for h in headers):
            self.run(["g++", "-c", "pjsua2_wrap.cpp", "-o", wrap_obj.name, *CFLAGS.split(), *cflags,
                      f"-I{include}"], swig_dir, "compile pjsua2_wrap.cpp")
        module = swig_dir / f"_pjsua2{self.ext_suffix}"
        libs = [f"-l{name}" for name in query("libs")]
        self.run(["g++", "-shared", "-o", module.name, wrap_obj.name, *query("ldflags"), *libs],
                 swig_dir, "link _pjsua2")
        return module

    def config_values(self) -> dict[str, str]:
        values = {}
        for line in CONFIG_SITE.read_text(encoding="utf-8").splitlines():
            match = re.match(r"#define\s+(\w+)\s+(.+?)\s*$", line)
            if match:
                values[match.group(1)] = match.group(2)
        return values

    def make_wheel(self, module: Path, destination: Path) -> None:
        swig_dir = module.parent
        stripped = self.state / module.name
        shutil.copy2(module, stripped)
        subprocess.run(["strip", "--strip-debug", str(stripped)], check=True)
        marker = {
            "builder": "sipcli engine/build.py",
            "pjproject": PJPROJECT_VERSION,
            "version": WHEEL_VERSION,
            "source_sha256": self.source_hash,
            "key": self.key,
            "configure": list(CONFIGURE_ARGS),
            "patches": [p.name for p in self.patches],
            "config_site": self.config_values(),
        }
        package = {
            "pjsua2/__init__.py": INIT_PY.encode(),
            "pjsua2/_version.py": f'__version__ = "{WHEEL_VERSION}"\n'.encode(),
            "pjsua2/_pjproject_ref": f"{PJPROJECT_VERSION}\n".encode(),
            "pjsua2/pjsua2.py": (swig_dir / "pjsua2.py").read_bytes(),
            f"pjsua2/{MARKER}": (json.dumps(marker, indent=2) + "\n").encode(),
        }
        dist_info = f"pjsua2_python-{WHEEL_VERSION}.dist-info"
        metadata = (f"Metadata-Version: 2.1\nName: pjsua2-python\nVersion: {WHEEL_VERSION}\n"
                    "Summary: PJSUA2 Python bindings built by sipcli (IPv6, TLS 1.3, 256 calls, Opus)\n"
                    "License: GPL-2.0-or-later\nRequires-Python: >=3.11\n")
        wheel = (f"Wheel-Version: 1.0\nGenerator: sipcli-engine-build {RECIPE}\nRoot-Is-Purelib: false\n"
                 f"Tag: {self.py_tag}-{self.py_tag}-{self.platform_tag}\n")
        package[f"{dist_info}/METADATA"] = metadata.encode()
        package[f"{dist_info}/WHEEL"] = wheel.encode()
        package[f"{dist_info}/top_level.txt"] = b"pjsua2\n"
        package[f"{dist_info}/COPYING"] = (self.src / "COPYING").read_bytes()
        records = io.StringIO()
        writer = csv.writer(records, lineterminator="\n")
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            items = [*package.items(), (f"pjsua2/{module.name}", stripped)]
            for name, content in items:
                data = content.read_bytes() if isinstance(content, Path) else content
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                writer.writerow([name, f"sha256={digest}", len(data)])
            writer.writerow([f"{dist_info}/RECORD", "", ""])
            info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, records.getvalue())
        partial.rename(destination)
        stripped.unlink()

    def build(self, force: bool) -> Path:
        wheel = self.cache / "wheels" / self.key[:16] / self.wheel_name
        if wheel.exists() and not force:
            log(f"unchanged (key {self.key[:16]}): {wheel}")
            return wheel
        started = time.monotonic()
        self.unpack()
        self.state.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("", encoding="utf-8")
        self.apply_patches()
        self.configure()
        self.compile_libraries()
        module = self.compile_bindings()
        self.make_wheel(module, wheel)
        log(f"built {wheel} ({wheel.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
        return wheel


INIT_PY = '''"""PJSUA2 bindings built by sipcli's engine/build.py (see sipcli_build.json next to this file)."""

from . import pjsua2 as _bindings
from ._version import __version__
from .pjsua2 import *  # noqa: F403


def __getattr__(name):
    return getattr(_bindings, name)
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help=f"pjproject {PJPROJECT_VERSION} tarball or source directory")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sipcli-engine",
                        help="build directory, kept between runs (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="copy the wheel into this directory")
    parser.add_argument("--install", action="store_true",
                        help="pip install the wheel into this Python, replacing the PyPI pjsua2")
    parser.add_argument("--install-deps", action="store_true", help="apt-get install missing build packages (root)")
    parser.add_argument("--print-deps", action="store_true", help="print the Debian build packages and exit")
    parser.add_argument("--print-key", action="store_true", help="print the cache key of this build and exit")
    parser.add_argument("--force", action="store_true", help="rebuild the wheel even if the key is unchanged")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.print_deps:
        print(" ".join(DEBIAN_PACKAGES))
        return 0
    if args.source is None:
        parser.error("--source is required")
    if not args.source.exists():
        parser.error(f"--source {args.source}: no such file or directory")
    try:
        builder = Builder(args.source.resolve(), args.cache.resolve(), args.jobs)
        if args.print_key:
            print(builder.key)
            return 0
        ensure_packages(args.install_deps)
        wheel = builder.build(args.force)
    except BuildError as error:
        log(str(error))
        return 1
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, args.out / wheel.name)
        wheel = args.out / wheel.name
    if args.install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--force-reinstall", "--no-deps", str(wheel)], check=True)
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

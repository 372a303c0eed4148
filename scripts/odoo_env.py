"""Finds or builds the Odoo that the project's scripts run: a source tree and a virtual environment.

``scripts/test.sh`` and ``scripts/demo.sh`` call this before anything that needs Odoo, so
that on a fresh machine the README's two commands are the whole set-up, and so that the
user's own ``python3`` never receives a package. For one Odoo series (``18.0``,
``19.0``) it

1. finds Odoo's source, in this order:

   - ``MANGO_ODOO_SRC_<series>`` (``MANGO_ODOO_SRC_18_0``), or ``MANGO_ODOO_SRC`` for the
     series being set up: a source tree, used where it is, or a source archive
     (``.tar.xz``, ``.tar.gz``, ``.tgz``, ``.zip``), unpacked once into the cache folder
     (its checksum is verified when a ``SHA256SUMS`` file lies beside it);
   - an Odoo of that series that ``python3`` already imports (a hand install);
   - a shallow clone of Odoo's official branch in the cache folder
     (``${XDG_CACHE_HOME:-~/.cache}/mango-odoo/git/odoo-<series>``), made once and
     reused; without network the run stops and names ``MANGO_ODOO_SRC``;

2. builds ``.venv/odoo-<series>/`` at the repository root with Odoo's requirements and
   the project's own (``requirements.txt``, ``requirements-test.txt``), with the source
   tree on its path (a ``.pth`` file), so that its ``python`` imports ``odoo``. A stamp
   records what the venv was built from: the next run finds it unchanged and starts at
   once;

3. prints shell assignments (``MANGO_PY``, ``MANGO_ODOO_BIN``, …) for ``eval``.

``--core-only`` builds ``.venv/core/`` with the project's requirements alone, for a run
of the pure suite without Odoo.

Plain standard library: it runs under any ``python3`` before a venv exists. Every
outside command goes through one ``run`` function, which the pure tests replace with
fakes of git, venv and pip.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SERIES = "18.0"
ODOO_GIT_URL = "https://github.com/odoo/odoo.git"
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")
# Python versions each Odoo series supports (its setup.py / release notes).
SUPPORTED_PYTHONS = {
    "18.0": ((3, 10), (3, 12)),
    "19.0": ((3, 10), (3, 13)),
}
# Bumped when the way a venv is built changes, so that existing venvs are rebuilt.
BUILD_RECIPE = 3

# Odoo's requirements with the pins that do not install on a current toolchain replaced.
# cbor2 5.4.2 (pinned by Odoo for Python < 3.12) imports pkg_resources in its setup.py,
# which setuptools 81+ no longer ships: it does not build on Python 3.11. 5.6.2 is the
# pin Odoo itself moved to later and installs from a wheel.
REQUIREMENT_REWRITES = ((re.compile(r"^cbor2==5\.4\.2\b"), "cbor2==5.6.2"),)
# Pins that Odoo's requirements leave open and that break it at run time.
CONSTRAINTS = (
    # gevent (the bus and live notifications with --workers) imports pkg_resources at
    # start, which setuptools 81 and newer no longer ship.
    "setuptools<81",
    # zope.interface 8 / zope.event 6 have dist-info names that pkg_resources cannot
    # resolve: Odoo's gevent process crash-loops in --workers mode, silently stopping
    # the incoming-call card.
    "zope.interface==6.4.post2",
    "zope.event==4.6",
)


class BootstrapError(Exception):
    """A problem the user must fix; its message says how."""


@dataclass
class OdooSource:
    """Where an Odoo source tree is and how it was obtained."""

    kind: str  # "tree", "archive", "installed" or "git"
    root: Path
    description: str
    release: str = ""

    @property
    def odoo_bin(self):
        path = self.root / "odoo-bin"
        return path if path.is_file() else None

    @property
    def addons_paths(self):
        """Odoo's own addons folders, as ``--addons-path`` wants them."""
        candidates = (self.root / "addons", self.root / "odoo" / "addons")
        return [p for p in candidates if (p / "web" / "__manifest__.py").is_file()]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd, **kwargs):
    """Runs an outside command (git, python -m venv, pip); replaced by fakes in tests."""
    return subprocess.run(cmd, check=False, **kwargs)


@contextlib.contextmanager
def step(what):
    """Logs a long step with its duration, and says so when it fails."""
    log(f"{what} …")
    started = time.monotonic()
    try:
        yield
    except BaseException:
        log(f"{what}: failed after {time.monotonic() - started:.1f} s")
        raise
    log(f"{what}: done in {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def locked(path):
    """One bootstrap at a time per folder: CI and a developer may start together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def series_key(series):
    return series.replace(".", "_").replace("-", "_")


def cache_dir(env):
    base = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or str(Path.home()), ".cache"
    )
    return Path(base) / "mango-odoo"


def release_of(root):
    """``(series, version)`` of the Odoo source tree at ``root``, or None.

    Read from ``odoo/release.py`` as text: importing it would need the tree on the path.
    """
    release = Path(root) / "odoo" / "release.py"
    if not release.is_file():
        return None
    text = release.read_text(encoding="utf-8", errors="replace")
    match = re.search(
        r"^version_info\s*=\s*\(\s*(?:'saas~)?(\d+)'?\s*,\s*(\d+)", text, re.M
    )
    if not match:
        return None
    series = f"{match.group(1)}.{match.group(2)}"
    stage = re.search(
        r"^version_info\s*=\s*\([^)]*?,\s*(ALPHA|BETA|RELEASE_CANDIDATE|FINAL)",
        text,
        re.M,
    )
    suffix = (
        "" if not stage or stage.group(1) == "FINAL" else f" ({stage.group(1).lower()})"
    )
    return series, series + suffix


def _check_series(root, series, what):
    found = release_of(root)
    if found is None:
        raise BootstrapError(
            f"{what} is not an Odoo source tree (no odoo/release.py in {root})"
        )
    if found[0] != series:
        raise BootstrapError(f"{what} holds Odoo {found[0]}, not {series}")
    return found[1]


def _source_tree_in(folder):
    """The Odoo tree in an unpacked archive: the folder itself or its single subfolder."""
    if (folder / "odoo" / "release.py").is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir()]
    if len(children) == 1 and (children[0] / "odoo" / "release.py").is_file():
        return children[0]
    return folder


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(archive, digest):
    """Compares with a ``SHA256SUMS`` file beside the archive, when there is one."""
    sums = archive.parent / "SHA256SUMS"
    if not sums.is_file():
        return False
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == archive.name:
            if parts[0].lower() != digest:
                raise BootstrapError(
                    f"{archive} does not match its checksum in {sums} "
                    f"(expected {parts[0]}, found {digest}): the archive is damaged or was replaced"
                )
            return True
    return False


def _extract(archive, target):
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(target)
        return
    with tarfile.open(archive) as tarred:
        if hasattr(tarfile, "data_filter"):
            # The "data" filter refuses absolute paths and links out of the target.
            tarred.extractall(target, filter="data")
            return
        # Debian 12's Python 3.11.2 predates extraction filters (3.11.4): the same
        # refusal by hand, so a hostile archive cannot write outside the cache.
        members = tarred.getmembers()
        for member in members:
            _refuse_escaping_member(member, Path(target))
        tarred.extractall(target, members=members)  # noqa: S202 - members checked above


def _refuse_escaping_member(member, target):
    root = target.resolve()
    path = (root / member.name).resolve()
    if member.name.startswith("/") or not path.is_relative_to(root):
        raise BootstrapError(
            f"the archive holds a path outside its folder: {member.name}"
        )
    if member.islnk() or member.issym():
        base = root if member.islnk() else path.parent
        linked = (base / member.linkname).resolve()
        if member.linkname.startswith("/") or not linked.is_relative_to(root):
            raise BootstrapError(
                f"the archive holds a link outside its folder: {member.name} -> {member.linkname}"
            )
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise BootstrapError(f"the archive holds a device or pipe: {member.name}")


def unpack_archive(archive, series, cache):
    """Unpacks ``archive`` once into the cache; later runs find the finished copy."""
    digest = sha256_of(archive)
    checked = verify_checksum(archive, digest)
    target = cache / "src" / f"odoo-{series}-{digest[:12]}"
    ready = target / ".mango-unpacked"
    with locked(cache / "src" / f".odoo-{series}.lock"):
        if not ready.is_file():
            if target.exists():
                shutil.rmtree(target)  # an unpack that was interrupted
            with step(f"unpacking {archive.name} into {target}"):
                partial = Path(
                    tempfile.mkdtemp(prefix=f".odoo-{series}-", dir=target.parent)
                )
                try:
                    _extract(archive, partial)
                    partial.rename(target)
                except BaseException:
                    shutil.rmtree(partial, ignore_errors=True)
                    raise
            ready.write_text(json.dumps({"archive": str(archive), "sha256": digest}))
    return _source_tree_in(target), digest, checked


def explicit_source(series, env):
    """The path given for this series, if any: ``MANGO_ODOO_SRC_18_0`` or ``MANGO_ODOO_SRC``."""
    value = env.get(f"MANGO_ODOO_SRC_{series_key(series)}")
    if not value and env.get("MANGO_ODOO_SRC"):
        # Plain MANGO_ODOO_SRC names the source of the series being set up.
        value = env["MANGO_ODOO_SRC"]
    return value or None


def installed_odoo_root(series, python):
    """Root of an Odoo of ``series`` that ``python`` imports already, or None."""
    probe = run(
        [
            python,
            "-c",
            "import os, odoo.release as r; "
            "print(r.version); "
            "print(os.path.dirname(os.path.dirname(os.path.abspath(r.__file__))))",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return None
    lines = probe.stdout.strip().splitlines()
    if len(lines) != 2 or not lines[0].startswith(series):
        return None
    return Path(lines[1])


def git_clone(series, cache, env):
    """A shallow clone of Odoo's official branch in the cache, made once and reused."""
    target = cache / "git" / f"odoo-{series}"
    url = env.get("MANGO_ODOO_GIT_URL") or ODOO_GIT_URL
    with locked(cache / "git" / f".odoo-{series}.lock"):
        if (target / ".git").exists() and release_of(target):
            return target
        if target.exists():
            shutil.rmtree(target)  # a clone that was interrupted
        partial = target.with_name(f".{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        with step(
            f"cloning Odoo {series} from {url} (shallow, about 400 MB) into {target}"
        ):
            done = run(
                [
                    "git",
                    "clone",
                    "--quiet",
                    "--depth",
                    "1",
                    "--branch",
                    series,
                    url,
                    str(partial),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                shutil.rmtree(partial, ignore_errors=True)
                detail = (done.stderr or "").strip().splitlines()
                raise BootstrapError(
                    f"Odoo {series} is not installed and could not be cloned from {url}"
                    f" ({detail[-1] if detail else f'git exited {done.returncode}'}).\n"
                    f"No network? Point MANGO_ODOO_SRC at an Odoo {series} source tree or "
                    "archive (.tar.xz, .tar.gz, .zip) and run the command again, e.g.\n"
                    f"    export MANGO_ODOO_SRC=/path/to/odoo-{series}.tar.xz"
                )
        partial.rename(target)
    return target


def find_source(series, env, base_python):
    """Odoo's source for ``series``: the given path, an installed Odoo, or the cached clone."""
    cache = cache_dir(env)
    given = explicit_source(series, env)
    if given:
        path = Path(given).expanduser()
        if not path.is_absolute():
            path = Path(env.get("PWD") or os.getcwd()) / path
        if path.is_dir():
            release = _check_series(path, series, f"MANGO_ODOO_SRC ({path})")
            return OdooSource("tree", path, f"source tree {path}", release)
        if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
            root, digest, checked = unpack_archive(path, series, cache)
            release = _check_series(root, series, f"MANGO_ODOO_SRC ({path})")
            check = "checksum verified" if checked else "no SHA256SUMS beside it"
            return OdooSource(
                "archive",
                root,
                f"archive {path} (sha256 {digest[:12]}…, {check}), unpacked in {root}",
                release,
            )
        if path.is_file():
            raise BootstrapError(
                f"MANGO_ODOO_SRC ({path}) is neither a folder nor an archive "
                f"({', '.join(ARCHIVE_SUFFIXES)})"
            )
        raise BootstrapError(f"MANGO_ODOO_SRC ({path}) does not exist")
    root = installed_odoo_root(series, base_python)
    if root is not None:
        release = release_of(root)
        return OdooSource(
            "installed",
            root,
            f"the Odoo that {base_python} imports ({root})",
            release[1] if release else series,
        )
    root = git_clone(series, cache, env)
    return OdooSource(
        "git",
        root,
        f"clone of {env.get('MANGO_ODOO_GIT_URL') or ODOO_GIT_URL} "
        f"branch {series} in {root}",
        release_of(root)[1],
    )


def python_version(python):
    probe = run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return None
    with contextlib.suppress(ValueError):
        return tuple(int(x) for x in probe.stdout.strip().split("."))
    return None


def base_python(series, env):
    """A Python that the series supports: ``MANGO_PYTHON``, ``python3``, then python3.1x."""
    low, high = SUPPORTED_PYTHONS.get(series, ((3, 10), (3, 13)))
    wanted = [env["MANGO_PYTHON"]] if env.get("MANGO_PYTHON") else []
    wanted += ["python3"] + [
        f"python3.{minor}" for minor in range(high[1], low[1] - 1, -1)
    ]
    seen = []
    for name in wanted:
        found = shutil.which(name, path=env.get("PATH")) if os.sep not in name else name
        if not found:
            continue
        version = python_version(found)
        seen.append(f"{name} ({'.'.join(map(str, version)) if version else '?'})")
        if version and low <= version <= high:
            return found, version
    raise BootstrapError(
        f"Odoo {series} needs Python {low[0]}.{low[1]} to {high[0]}.{high[1]}; found "
        f"{', '.join(seen) or 'none'}. Install one, or name it in MANGO_PYTHON."
    )


def requirements_for(source):
    """Odoo's requirements (rewritten where a pin does not install) and the project's."""
    lines = []
    if source is not None and source.kind != "installed":
        odoo_requirements = source.root / "requirements.txt"
        if not odoo_requirements.is_file():
            raise BootstrapError(f"{source.root} has no requirements.txt")
        for line in odoo_requirements.read_text().splitlines():
            for pattern, replacement in REQUIREMENT_REWRITES:
                line = pattern.sub(replacement, line)
            lines.append(line)
    for name in ("requirements.txt", "requirements-test.txt"):
        lines += (ROOT / name).read_text().splitlines()
    return "\n".join(lines) + "\n"


def venv_python(venv):
    return venv / "bin" / "python"


def site_packages(venv):
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise BootstrapError(f"{venv} has no site-packages folder")
    return found[0]


def ensure_venv(venv, source, python, version):
    """Creates or reuses the venv; returns its python. Reused when its stamp matches."""
    requirements = requirements_for(source)
    stamp = {
        "recipe": BUILD_RECIPE,
        "python": f"{python} {'.'.join(map(str, version))}",
        "source": str(source.root) if source else None,
        "requirements_sha256": hashlib.sha256(
            (requirements + "\n".join(CONSTRAINTS)).encode()
        ).hexdigest(),
    }
    stamp_file = venv / "mango-venv.json"
    with locked(venv.parent / f".{venv.name}.lock"):
        if venv_python(venv).exists() and stamp_file.is_file():
            with contextlib.suppress(ValueError):
                if json.loads(stamp_file.read_text()) == stamp:
                    return venv_python(venv), False
        if venv.exists():
            log(f"rebuilding {venv}: it was built from something else")
            shutil.rmtree(venv)
        # An Odoo installed by hand lives in the user's Python with its requirements:
        # the venv sees them, and only what is missing is installed into it.
        system_site = source is not None and source.kind == "installed"
        with step(f"creating {venv} (Python {'.'.join(map(str, version))})"):
            cmd = (
                [python, "-m", "venv"]
                + (["--system-site-packages"] if system_site else [])
                + [str(venv)]
            )
            if run(cmd).returncode != 0:
                raise BootstrapError(f"could not create {venv} with {python} -m venv")
        with tempfile.TemporaryDirectory() as tmp:
            req_file = Path(tmp) / "requirements.txt"
            req_file.write_text(requirements)
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(CONSTRAINTS) + "\n")
            pip = [
                str(venv_python(venv)),
                "-m",
                "pip",
                "--disable-pip-version-check",
                "-q",
                "install",
            ]
            what = (
                "Odoo's and the project's"
                if source and source.kind != "installed"
                else "the project's"
            )
            with step(
                f"installing {what} Python requirements into {venv} "
                "(pip; a few minutes the first time)"
            ):
                # PIP_CONSTRAINT reaches the isolated build environments too (a -c
                # option does not), where psycopg2 and python-ldap are compiled.
                env = dict(os.environ, PIP_CONSTRAINT=str(constraints))
                first = run(pip + ["setuptools<81", "wheel"], env=env)
                done = (
                    first
                    if first.returncode != 0
                    else run(
                        pip + ["-r", str(req_file), "-c", str(constraints)], env=env
                    )
                )
                if done.returncode != 0:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise BootstrapError(
                        f"pip could not install the requirements into {venv} "
                        "(see its output above). "
                        "psycopg2 and python-ldap compile here: they need gcc, the Python headers, "
                        "libpq-dev, libldap2-dev and libsasl2-dev."
                    )
        if source is not None and source.kind != "installed":
            # The venv imports odoo from the source tree, as `pip install -e` would, with
            # nothing built or copied.
            (site_packages(venv) / "mango-odoo-source.pth").write_text(
                f"{source.root}\n"
            )
        stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return venv_python(venv), True


def shell_assignments(values):
    return "".join(
        f"{key}={shlex.quote(str(value))}\n" for key, value in values.items()
    )


def ensure(series, env, core_only=False):
    """Finds the source and builds the venv; returns the assignments for the shell."""
    python, version = base_python(series, env)
    venvs = Path(env.get("MANGO_VENV_DIR") or ROOT / ".venv")
    if core_only:
        py, _ = ensure_venv(venvs / "core", None, python, version)
        return {
            "MANGO_PY": py,
            "MANGO_ODOO_SERIES": "",
            "MANGO_ODOO_SOURCE": "none (pure suite only)",
        }
    started = time.monotonic()
    source = find_source(series, env, python)
    py, built = ensure_venv(venvs / f"odoo-{series}", source, python, version)
    if not built:
        log(
            f"Odoo {source.release}: {source.description}; venv {py.parent.parent} "
            f"reused ({time.monotonic() - started:.1f} s)"
        )
    return {
        "MANGO_PY": py,
        "MANGO_ODOO_SERIES": series,
        "MANGO_ODOO_RELEASE": source.release,
        "MANGO_ODOO_ROOT": source.root,
        "MANGO_ODOO_BIN": source.odoo_bin or "",
        "MANGO_ODOO_SOURCE": source.description,
        "MANGO_ODOO_ADDONS_PATH": ",".join([*map(str, source.addons_paths), str(ROOT)]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--series",
        default=os.environ.get("MANGO_ODOO_VERSION") or DEFAULT_SERIES,
        help="Odoo series, e.g. 18.0 (default: $MANGO_ODOO_VERSION or %(default)s)",
    )
    parser.add_argument(
        "--core-only",
        action="store_true",
        help="only the project's requirements, no Odoo (pure suite)",
    )
    args = parser.parse_args(argv)
    if args.series not in SUPPORTED_PYTHONS:
        parser.error(
            f"unknown Odoo series {args.series!r} (known: {', '.join(SUPPORTED_PYTHONS)})"
        )
    try:
        values = ensure(args.series, dict(os.environ), core_only=args.core_only)
    except BootstrapError as error:
        log(f"ERROR: {error}")
        return 2
    sys.stdout.write(shell_assignments(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())

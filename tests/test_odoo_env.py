"""scripts/odoo_env.py: where Odoo comes from and the project's venv.

Real archives and folders in a temporary directory; git, ``python -m venv`` and pip
are replaced by a fake ``run`` that records each command and does what the real one
would leave on disk, so no test needs the network or minutes of pip.
"""

import importlib.util
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "odoo_env", ROOT / "scripts" / "odoo_env.py"
)
odoo_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(odoo_env)

RELEASE_PY = "version_info = ({major}, 0, 0, FINAL, 0, '')\nversion = '{major}.0'\n"
ODOO_REQUIREMENTS = "cbor2==5.4.2 ; python_version < '3.12'\npsycopg2==2.9.5\n"


def make_tree(folder, major=18):
    """A minimal Odoo source tree: what the bootstrap looks at."""
    (folder / "odoo").mkdir(parents=True)
    (folder / "odoo" / "release.py").write_text(RELEASE_PY.format(major=major))
    (folder / "addons" / "web").mkdir(parents=True)
    (folder / "addons" / "web" / "__manifest__.py").write_text("{}")
    (folder / "odoo-bin").write_text("#!/usr/bin/env python3\n")
    (folder / "requirements.txt").write_text(ODOO_REQUIREMENTS)
    return folder


def make_tar(path, major=18, top="odoo-src"):
    staging = path.parent / f"staging-{path.name}"
    make_tree(staging / top if top else staging, major)
    with tarfile.open(path, "w:gz") as tarred:
        for item in sorted(staging.iterdir()):
            tarred.add(item, arcname=item.name)
    return path


class FakeRun:
    """Stands in for subprocess.run: git clone, python probes, venv and pip."""

    def __init__(
        self, installed=None, clone_ok=True, pip_ok=True, python_version="3.11"
    ):
        self.calls = []
        self.installed = installed  # (version, root) that python3 "imports", or None
        self.clone_ok = clone_ok
        self.pip_ok = pip_ok
        self.python_version = python_version
        self.pip_inputs = []

    def __call__(self, cmd, **kwargs):
        self.calls.append(list(map(str, cmd)))
        cmd = list(map(str, cmd))
        if cmd[0] == "git":
            if not self.clone_ok:
                return subprocess.CompletedProcess(
                    cmd,
                    128,
                    "",
                    "fatal: unable to access 'https://github.com/odoo/odoo.git/': "
                    "Could not resolve host: github.com\n",
                )
            target = Path(cmd[-1])
            make_tree(target, int(cmd[cmd.index("--branch") + 1].split(".")[0]))
            (target / ".git").mkdir()
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[1:3] == ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]:
            return subprocess.CompletedProcess(cmd, 0, self.python_version + "\n", "")
        if len(cmd) > 2 and cmd[1] == "-c" and "odoo.release" in cmd[2]:
            if self.installed is None:
                return subprocess.CompletedProcess(
                    cmd, 1, "", "ModuleNotFoundError: odoo"
                )
            version, root = self.installed
            return subprocess.CompletedProcess(cmd, 0, f"{version}\n{root}\n", "")
        if cmd[1:3] == ["-m", "venv"]:
            venv = Path(cmd[-1])
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").write_text("")
            (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
            return subprocess.CompletedProcess(cmd, 0)
        if cmd[1:3] == ["-m", "pip"]:
            files = {}
            for flag in ("-r", "-c"):
                if flag in cmd:
                    files[flag] = Path(cmd[cmd.index(flag) + 1]).read_text()
            env = kwargs.get("env") or {}
            files["PIP_CONSTRAINT"] = (
                Path(env["PIP_CONSTRAINT"]).read_text() if env else ""
            )
            self.pip_inputs.append((cmd, files))
            return subprocess.CompletedProcess(cmd, 0 if self.pip_ok else 1)
        raise AssertionError(f"unexpected command {cmd}")

    def commands(self, first_word):
        return [
            c for c in self.calls if c[0] == first_word or c[1:3] == ["-m", first_word]
        ]


@pytest.fixture
def fake(monkeypatch):
    runner = FakeRun()
    monkeypatch.setattr(odoo_env, "run", runner)
    return runner


@pytest.fixture
def env(tmp_path):
    return {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HOME": str(tmp_path / "home"),
        "PATH": os.environ["PATH"],
        "PWD": str(tmp_path),
    }


# --- where the source comes from ---------------------------------------------------


def test_release_of_reads_the_series_without_importing(tmp_path):
    make_tree(tmp_path / "o", major=19)
    assert odoo_env.release_of(tmp_path / "o") == ("19.0", "19.0")
    assert odoo_env.release_of(tmp_path) is None


def test_a_source_tree_is_used_where_it_is(tmp_path, env, fake):
    tree = make_tree(tmp_path / "my-odoo")
    env["MANGO_ODOO_SRC"] = str(tree)
    source = odoo_env.find_source("18.0", env, "python3")
    assert (source.kind, source.root) == ("tree", tree)
    assert source.odoo_bin == tree / "odoo-bin"
    assert source.addons_paths == [tree / "addons"]
    assert not (tmp_path / "cache").exists(), "a tree is never copied into the cache"
    assert fake.calls == [], "a given tree needs no git and no probe"


def test_a_relative_source_is_read_from_the_callers_folder(tmp_path, env, fake):
    make_tree(tmp_path / "rel")
    env["MANGO_ODOO_SRC"] = "rel"
    assert odoo_env.find_source("18.0", env, "python3").root == tmp_path / "rel"


def test_a_tree_of_another_series_is_refused_by_name(tmp_path, env, fake):
    env["MANGO_ODOO_SRC"] = str(make_tree(tmp_path / "old", major=17))
    with pytest.raises(odoo_env.BootstrapError, match=r"holds Odoo 17\.0, not 18\.0"):
        odoo_env.find_source("18.0", env, "python3")


def test_a_missing_or_foreign_path_is_refused(tmp_path, env, fake):
    env["MANGO_ODOO_SRC"] = str(tmp_path / "nowhere")
    with pytest.raises(odoo_env.BootstrapError, match="does not exist"):
        odoo_env.find_source("18.0", env, "python3")
    (tmp_path / "notes.txt").write_text("x")
    env["MANGO_ODOO_SRC"] = str(tmp_path / "notes.txt")
    with pytest.raises(
        odoo_env.BootstrapError, match="neither a folder nor an archive"
    ):
        odoo_env.find_source("18.0", env, "python3")
    (tmp_path / "empty").mkdir()
    env["MANGO_ODOO_SRC"] = str(tmp_path / "empty")
    with pytest.raises(odoo_env.BootstrapError, match="not an Odoo source tree"):
        odoo_env.find_source("18.0", env, "python3")


def test_an_archive_is_unpacked_once_into_the_cache(tmp_path, env, fake, monkeypatch):
    archive = make_tar(tmp_path / "odoo-18.0.tar.gz")
    env["MANGO_ODOO_SRC"] = str(archive)
    source = odoo_env.find_source("18.0", env, "python3")
    assert source.kind == "archive"
    assert source.root.is_relative_to(tmp_path / "cache" / "mango-odoo" / "src")
    assert (source.root / "odoo" / "release.py").is_file(), (
        "the single top folder is the tree"
    )
    assert "no SHA256SUMS beside it" in source.description
    assert not any(
        p.name.startswith(".odoo-18.0-") and p.is_dir()
        for p in source.root.parent.parent.iterdir()
    ), "no half-unpacked folder left"

    def no_second_unpack(*args):
        raise AssertionError("the archive was unpacked again")

    monkeypatch.setattr(odoo_env, "_extract", no_second_unpack)
    assert odoo_env.find_source("18.0", env, "python3").root == source.root


def test_an_interrupted_unpack_is_redone(tmp_path, env, fake, monkeypatch):
    archive = make_tar(tmp_path / "odoo-18.0.tar.gz")
    env["MANGO_ODOO_SRC"] = str(archive)
    first = odoo_env.find_source("18.0", env, "python3")
    (first.root.parent / ".mango-unpacked").unlink()  # as if killed before the end
    (first.root / "odoo" / "release.py").unlink()
    again = odoo_env.find_source("18.0", env, "python3")
    assert (again.root / "odoo" / "release.py").is_file()


def test_a_zip_without_top_folder(tmp_path, env, fake):
    tree = make_tree(tmp_path / "z")
    archive = tmp_path / "odoo.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in tree.rglob("*"):
            zipped.write(path, path.relative_to(tree))
    env["MANGO_ODOO_SRC"] = str(archive)
    source = odoo_env.find_source("18.0", env, "python3")
    assert (source.root / "odoo-bin").is_file()


def test_the_checksum_beside_the_archive_is_verified(tmp_path, env, fake):
    archive = make_tar(tmp_path / "odoo-18.0.tar.gz")
    digest = odoo_env.sha256_of(archive)
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  odoo-18.0.tar.gz\n")
    env["MANGO_ODOO_SRC"] = str(archive)
    assert (
        "checksum verified" in odoo_env.find_source("18.0", env, "python3").description
    )

    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  odoo-18.0.tar.gz\n")
    with pytest.raises(odoo_env.BootstrapError, match="does not match its checksum"):
        odoo_env.find_source("18.0", env, "python3")


def test_a_path_per_series_wins_over_the_plain_variable(tmp_path, env, fake):
    env["MANGO_ODOO_SRC"] = str(make_tree(tmp_path / "o18"))
    env["MANGO_ODOO_SRC_19_0"] = str(make_tree(tmp_path / "o19", major=19))
    assert odoo_env.find_source("19.0", env, "python3").root == tmp_path / "o19"
    assert odoo_env.find_source("18.0", env, "python3").root == tmp_path / "o18"


def test_an_odoo_python3_imports_is_used_when_none_is_given(tmp_path, env, fake):
    root = make_tree(tmp_path / "site" / "odoo-checkout")
    fake.installed = ("18.0", str(root))
    source = odoo_env.find_source("18.0", env, "python3")
    assert (source.kind, source.root) == ("installed", root)
    assert fake.commands("git") == []


def test_an_installed_odoo_of_another_series_is_not_used(tmp_path, env, fake):
    fake.installed = ("17.0", str(make_tree(tmp_path / "o17", major=17)))
    source = odoo_env.find_source("18.0", env, "python3")
    assert source.kind == "git"


def test_otherwise_a_shallow_clone_is_made_once_and_reused(tmp_path, env, fake):
    source = odoo_env.find_source("18.0", env, "python3")
    assert source.kind == "git"
    assert source.root == tmp_path / "cache" / "mango-odoo" / "git" / "odoo-18.0"
    (clone,) = fake.commands("git")
    assert (
        clone[:2] == ["git", "clone"]
        and "--depth" in clone
        and clone[clone.index("--branch") + 1] == "18.0"
    )
    assert odoo_env.ODOO_GIT_URL in clone
    assert odoo_env.find_source("18.0", env, "python3").root == source.root
    assert len(fake.commands("git")) == 1, "the second run reuses the clone"


def test_no_network_stops_with_the_way_out(tmp_path, env, fake):
    fake.clone_ok = False
    with pytest.raises(odoo_env.BootstrapError) as raised:
        odoo_env.find_source("18.0", env, "python3")
    message = str(raised.value)
    assert "Could not resolve host" in message
    assert "MANGO_ODOO_SRC" in message and "No network?" in message
    git_dir = tmp_path / "cache" / "mango-odoo" / "git"
    assert [p.name for p in git_dir.iterdir() if not p.name.endswith(".lock")] == []


# --- the venv ---------------------------------------------------------------------


def test_the_venv_gets_odoo_and_the_project_requirements_with_the_traps_handled(
    tmp_path, env, fake
):
    source = odoo_env.OdooSource("tree", make_tree(tmp_path / "o"), "tree", "18.0")
    venv = tmp_path / ".venv" / "odoo-18.0"
    python, built = odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))
    assert built and python == venv / "bin" / "python"
    (venv_cmd,) = fake.commands("venv")
    assert "--system-site-packages" not in venv_cmd
    cmd, files = fake.pip_inputs[-1]
    requirements = files["-r"]
    assert "cbor2==5.6.2 ; python_version < '3.12'" in requirements
    assert "cbor2==5.4.2" not in requirements
    assert "psycopg2==2.9.5" in requirements
    for ours in ("ldap3", "phonenumbers", "hypothesis", "websocket-client"):
        assert ours in requirements
    for pin in ("zope.interface==6.4.post2", "zope.event==4.6", "setuptools<81"):
        assert pin in files["-c"] and pin in files["PIP_CONSTRAINT"]
    pth = venv / "lib" / "python3.11" / "site-packages" / "mango-odoo-source.pth"
    assert pth.read_text().strip() == str(source.root)


def test_the_next_run_reuses_the_venv_and_a_change_rebuilds_it(tmp_path, env, fake):
    tree = make_tree(tmp_path / "o")
    source = odoo_env.OdooSource("tree", tree, "tree", "18.0")
    venv = tmp_path / ".venv" / "odoo-18.0"
    odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))
    before = len(fake.calls)
    assert odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11)) == (
        venv / "bin" / "python",
        False,
    )
    assert len(fake.calls) == before, "a reused venv runs nothing"
    (tree / "requirements.txt").write_text(ODOO_REQUIREMENTS + "lxml==5.2.1\n")
    assert odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))[1] is True
    assert "lxml==5.2.1" in fake.pip_inputs[-1][1]["-r"]


def test_an_installed_odoo_gets_a_venv_that_sees_it(tmp_path, env, fake):
    source = odoo_env.OdooSource(
        "installed", make_tree(tmp_path / "o"), "installed", "18.0"
    )
    venv = tmp_path / ".venv" / "odoo-18.0"
    odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))
    (venv_cmd,) = fake.commands("venv")
    assert "--system-site-packages" in venv_cmd
    requirements = fake.pip_inputs[-1][1]["-r"]
    assert "psycopg2" not in requirements, "the user's Odoo brings its own requirements"
    assert "ldap3" in requirements
    assert not list(venv.rglob("mango-odoo-source.pth"))


def test_a_failed_pip_leaves_no_half_venv(tmp_path, env, fake):
    fake.pip_ok = False
    source = odoo_env.OdooSource("tree", make_tree(tmp_path / "o"), "tree", "18.0")
    venv = tmp_path / ".venv" / "odoo-18.0"
    with pytest.raises(odoo_env.BootstrapError, match="libldap2-dev"):
        odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))
    assert not venv.exists()


def test_an_unsupported_python_is_named(tmp_path, env, fake):
    fake.python_version = "3.9"
    env["PATH"] = str(tmp_path / "bin")
    (tmp_path / "bin").mkdir()
    fake_python = tmp_path / "bin" / "python3"
    fake_python.write_text("#!/bin/sh\n")
    fake_python.chmod(0o755)
    with pytest.raises(
        odoo_env.BootstrapError,
        match=r"needs Python 3\.10 to 3\.12; found python3 \(3\.9\)",
    ):
        odoo_env.base_python("18.0", env)


# --- the command ------------------------------------------------------------------


def test_the_command_prints_assignments_for_the_shell(
    tmp_path, env, fake, monkeypatch, capsys
):
    env["MANGO_ODOO_SRC"] = str(make_tar(tmp_path / "odoo-18.0.tar.gz"))
    env["MANGO_VENV_DIR"] = str(tmp_path / ".venv")
    monkeypatch.setattr(os, "environ", env)
    assert odoo_env.main(["--series", "18.0"]) == 0
    out = capsys.readouterr().out
    values = dict(line.split("=", 1) for line in shlex.split(out.replace("\n", " ")))
    assert values["MANGO_PY"] == str(
        tmp_path / ".venv" / "odoo-18.0" / "bin" / "python"
    )
    assert (
        values["MANGO_ODOO_SERIES"] == "18.0" and values["MANGO_ODOO_RELEASE"] == "18.0"
    )
    assert values["MANGO_ODOO_SOURCE"].startswith("archive " + env["MANGO_ODOO_SRC"])
    assert values["MANGO_ODOO_BIN"].endswith("odoo-bin")
    assert values["MANGO_ODOO_ADDONS_PATH"].split(",")[-1] == str(ROOT)


def test_the_command_fails_with_the_message_and_code_2(
    tmp_path, env, fake, monkeypatch, capsys
):
    fake.clone_ok = False
    env["MANGO_VENV_DIR"] = str(tmp_path / ".venv")
    monkeypatch.setattr(os, "environ", env)
    assert odoo_env.main(["--series", "18.0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ERROR: Odoo 18.0 is not installed and could not be cloned" in captured.err
    assert "MANGO_ODOO_SRC" in captured.err


def test_the_core_venv_has_no_odoo(tmp_path, env, fake, monkeypatch, capsys):
    env["MANGO_VENV_DIR"] = str(tmp_path / ".venv")
    monkeypatch.setattr(os, "environ", env)
    assert odoo_env.main(["--core-only"]) == 0
    assert (
        "MANGO_PY=" + str(tmp_path / ".venv" / "core" / "bin" / "python")
        in capsys.readouterr().out
    )
    assert fake.commands("git") == []
    assert "psycopg2" not in fake.pip_inputs[-1][1]["-r"]


def test_the_real_module_runs_under_a_bare_python():
    """It is started by the user's python3 before any venv exists: stdlib only."""
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import ast, sys; tree = ast.parse(open(sys.argv[1]).read());"
            "mods = {n.names[0].name.split('.')[0] for n in ast.walk(tree)"
            " if isinstance(n, ast.Import)}"
            " | {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)};"
            "print(sorted(m for m in mods if m not in sys.stdlib_module_names))",
            str(ROOT / "scripts" / "odoo_env.py"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_the_scripts_use_the_venv_python_not_the_users():
    lib = (ROOT / "scripts" / "lib.sh").read_text()
    test = (ROOT / "scripts" / "test.sh").read_text()
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "pip install" not in lib + test + demo, (
        "nothing is pip-installed into the user's python3"
    )
    assert '"$MANGO_PY" -m pytest tests' in test
    assert "mango_odoo_env" in test and "mango_odoo_env" in demo
    ci = (ROOT / ".ci" / "run").read_text()
    assert "odoo-18.0.tar.xz" in ci and "exec bash scripts/test.sh" in ci
    assert 'CI="${CI:-true}"' in ci


def test_the_stamp_records_what_the_venv_was_built_from(tmp_path, env, fake):
    source = odoo_env.OdooSource("tree", make_tree(tmp_path / "o"), "tree", "18.0")
    venv = tmp_path / "v"
    odoo_env.ensure_venv(venv, source, "/usr/bin/python3", (3, 11))
    stamp = json.loads((venv / "mango-venv.json").read_text())
    assert (
        stamp["source"] == str(source.root) and stamp["recipe"] == odoo_env.BUILD_RECIPE
    )


@pytest.mark.parametrize(
    "filters", [True, False], ids=["with-filters", "python-3.11.2"]
)
def test_an_archive_escaping_its_folder_is_refused(
    tmp_path, env, fake, monkeypatch, filters
):
    # Debian 12 ships Python 3.11.2, whose tarfile has no extraction filters:
    # the hand-made check must refuse what the "data" filter refuses.
    if not filters:
        monkeypatch.delattr(odoo_env.tarfile, "data_filter", raising=False)
    archive = tmp_path / "odoo-18.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tarred:
        evil = tarfile.TarInfo("odoo-18.0/../../escaped.txt")
        evil.size = 0
        tarred.addfile(evil, io.BytesIO(b""))
    env["MANGO_ODOO_SRC"] = str(archive)
    with pytest.raises((odoo_env.BootstrapError, tarfile.TarError)):
        odoo_env.find_source("18.0", env, "python3")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "cache" / "escaped.txt").exists()


def test_an_archive_unpacks_without_extraction_filters(
    tmp_path, env, fake, monkeypatch
):
    monkeypatch.delattr(odoo_env.tarfile, "data_filter", raising=False)
    archive = make_tar(tmp_path / "odoo-18.0.tar.gz")
    env["MANGO_ODOO_SRC"] = str(archive)
    source = odoo_env.find_source("18.0", env, "python3")
    assert (source.root / "odoo" / "release.py").is_file()

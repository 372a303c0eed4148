"""Repository hygiene: manifests, views, packaging and the core/Odoo boundary.

Plain pytest, no database and no Odoo import. Parametrized over the addons that
exist in the tree, so it runs while the addons are being written.
"""

import ast
import csv
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KNOWN_ADDONS = ("mango_telephony", "mango_callback", "mango_ldap")
ADDONS = [a for a in KNOWN_ADDONS if (ROOT / a / "__manifest__.py").is_file()]
# A plain x.y.z: Odoo 18.0 and 19.0 each prefix it with their own series (a
# version of another series makes 19.0 take the addon for not installable).
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
README_FRAGMENTS = ("DESCRIPTION.md", "CONFIGURE.md", "USAGE.md", "ROADMAP.md")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SKIP_DIRS = {"__pycache__", "node_modules", ".git"}

addon_param = pytest.mark.parametrize("addon", ADDONS)


def _manifest(addon):
    return ast.literal_eval((ROOT / addon / "__manifest__.py").read_text())


def _files(base, suffixes=None):
    for path in sorted(base.rglob("*")):
        if SKIP_DIRS.intersection(path.relative_to(base).parts) or not path.is_file():
            continue
        if suffixes is None or path.suffix in suffixes:
            yield path


def _requirement_name(spec):
    name = re.split(r"[<>=!~;\[ ]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _setup_install_requires():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "INSTALL_REQUIRES" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no INSTALL_REQUIRES list")


def _requirements_file(name):
    lines = (ROOT / name).read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def test_at_least_one_addon_present():
    assert ADDONS, f"none of {KNOWN_ADDONS} exists in {ROOT}"


@addon_param
def test_manifest_keys(addon):
    manifest = _manifest(addon)
    assert VERSION_RE.match(manifest["version"]), manifest["version"]
    assert manifest["license"] == "LGPL-3"
    assert manifest.get("installable", True) is True
    for key in ("name", "summary", "author", "website", "category", "depends"):
        assert manifest.get(key), f"{addon}: manifest key {key!r} missing or empty"
    assert "description" not in manifest, "readme/DESCRIPTION.md replaces it"
    assert (ROOT / addon / "__init__.py").is_file()


@addon_param
def test_manifest_depends_on_existing_sibling_addons(addon):
    for dep in _manifest(addon)["depends"]:
        if dep.startswith("mango_"):
            assert (ROOT / dep / "__manifest__.py").is_file(), f"{addon} needs {dep}"


@addon_param
def test_manifest_listed_files_exist(addon):
    manifest = _manifest(addon)
    for key in ("data", "demo"):
        for rel in manifest.get(key, []):
            assert (ROOT / addon / rel).is_file(), f"{addon}: {key} file {rel} missing"


@addon_param
def test_manifest_assets_match_files(addon):
    for bundle, entries in _manifest(addon).get("assets", {}).items():
        for entry in entries:
            path = entry[-1] if isinstance(entry, list | tuple) else entry
            if not isinstance(path, str) or not path.startswith(f"{addon}/"):
                continue
            assert list(ROOT.glob(path)), (
                f"{addon}: {bundle} entry {path} matches nothing"
            )


@addon_param
def test_xml_parses_and_uses_odoo18_views(addon):
    for path in _files(ROOT / addon, {".xml"}):
        root = ET.parse(path).getroot()
        rel = path.relative_to(ROOT)
        for element in root.iter():
            assert element.tag != "tree", f"{rel}: <tree> is <list> since Odoo 18"
            for attr in ("attrs", "states"):
                assert attr not in element.attrib, f"{rel}: {attr}= removed in Odoo 17"
            if element.tag == "field" and element.get("name") == "view_mode":
                modes = (element.text or "").split(",")
                assert "tree" not in modes, f"{rel}: view_mode uses 'tree'"


@addon_param
def test_csv_files_parse(addon):
    for path in _files(ROOT / addon, {".csv"}):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows and rows[0][0] == "id", f"{path}: first column must be id"
        width = len(rows[0])
        assert all(len(row) == width for row in rows if row), f"{path}: ragged rows"


@addon_param
def test_readme_fragments_and_icon(addon):
    for fragment in README_FRAGMENTS:
        path = ROOT / addon / "readme" / fragment
        assert path.is_file() and path.read_text().strip(), f"{addon}: {fragment}"
    icon = ROOT / addon / "static" / "description" / "icon.png"
    assert icon.read_bytes()[:8] == PNG_MAGIC, f"{addon}: icon.png is not a PNG"


def test_install_requires_match_manifests():
    declared = {_requirement_name(r) for r in _setup_install_requires()}
    assert declared == {
        _requirement_name(r) for r in _requirements_file("requirements.txt")
    }
    union = set()
    for addon in ADDONS:
        python_deps = (
            _manifest(addon).get("external_dependencies", {}).get("python", [])
        )
        union |= {_requirement_name(dep) for dep in python_deps}
    assert union <= declared, f"manifests need {union - declared} missing from setup.py"
    if len(ADDONS) == len(KNOWN_ADDONS):
        assert union == declared, f"setup.py declares unused {declared - union}"


def _odoo_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
        ):
            yield node.args[0].value


def test_core_never_imports_odoo():
    sources = list(_files(ROOT / "mango_office", {".py"}))
    assert sources, "mango_office/ has no Python files"
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        bad = [n for n in _odoo_imports(tree) if n == "odoo" or n.startswith("odoo.")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_build_output_holds_every_addon_file(tmp_path):
    """setup.py puts addons under odoo/addons/ with all their non-Python files."""
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert not (tmp_path / "odoo" / "__init__.py").exists()
    assert not (tmp_path / "odoo" / "addons" / "__init__.py").exists()
    assert (tmp_path / "mango_office" / "__init__.py").is_file()
    assert not (tmp_path / "tests").exists()
    for addon in ADDONS:
        built = tmp_path / "odoo" / "addons" / addon
        for source in _files(ROOT / addon):
            if source.suffix == ".pyc":
                continue
            rel = source.relative_to(ROOT / addon)
            assert (built / rel).is_file(), f"{addon}/{rel} missing from the build"


def test_dev_tool_pins_match_pre_commit():
    """requirements-dev.txt and the hooks' additional_dependencies pin alike."""
    pins = dict(
        line.split("==", 1) for line in _requirements_file("requirements-dev.txt")
    )
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hook_pins = dict(re.findall(r"[\"']([A-Za-z0-9_.-]+)==([^\"']+)[\"']", config))
    assert hook_pins, "no pinned additional_dependencies in .pre-commit-config.yaml"
    for name, version in hook_pins.items():
        assert pins.get(name) == version, (
            f"{name}: hook {version}, dev {pins.get(name)}"
        )


def test_build_output_holds_every_core_module(tmp_path):
    """Every module of the pure core ships, sub-packages included (the simulator,
    the test fixtures of mango_office.testing the addons' tests import)."""
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    sources = list(_files(ROOT / "mango_office", {".py"}))
    assert ROOT / "mango_office" / "testing" / "ldap_servers.py" in sources
    for source in sources:
        rel = source.relative_to(ROOT)
        assert (tmp_path / rel).is_file(), f"{rel} missing from the build"

"""Packaging for the Mango Office telephony addons (plain setuptools).

``pip install .`` installs the pure core ``mango_office`` as a top-level package
and each addon under the ``odoo.addons`` namespace, where Odoo finds it without
``--addons-path``. Neither ``odoo/__init__.py`` nor ``odoo/addons/__init__.py``
is shipped: Odoo's own ``odoo.addons`` extends its ``__path__`` over every
``odoo/addons`` folder on ``sys.path``, so ours merges into it.
"""

import ast
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
ADDONS = ("mango_telephony", "mango_callback", "mango_ldap")
PRESENT_ADDONS = tuple(a for a in ADDONS if (ROOT / a / "__manifest__.py").is_file())

# Views, data, security, translations, readme fragments, neutralize SQL, web
# assets and test fixtures: every file of an addon (and of the core, e.g. the
# simulator's seeds) that is not Python source ships with it.
SKIP_PARTS = {"__pycache__", "node_modules"}

# Kept equal to the union of the manifests' external_dependencies["python"]
# (tests/test_packaging.py enforces it).
INSTALL_REQUIRES = ["requests", "phonenumbers", "ldap3"]


def read_requirements(name):
    lines = (ROOT / name).read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


TEST_REQUIRES = read_requirements("requirements-test.txt")


def manifest_version():
    manifest = ROOT / "mango_telephony" / "__manifest__.py"
    if manifest.is_file():
        return ast.literal_eval(manifest.read_text())["version"]
    return "1.0.0"


def package_files(folder):
    """Every file under a package folder that is not a module of a Python package,
    relative to it: data, and scripts Odoo runs by path (``migrations/<version>/``
    holds .py files in a folder that is not a package)."""
    base = ROOT / folder
    return sorted(
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file()
        and p.suffix != ".pyc"
        and not (p.suffix == ".py" and (p.parent / "__init__.py").is_file())
        and not SKIP_PARTS.intersection(p.relative_to(base).parts)
    )


def addon_packages(addon):
    """Python packages of one addon, named in the odoo.addons namespace."""
    base = ROOT / addon
    dirs = [base, *sorted(p for p in base.rglob("*") if p.is_dir())]
    return [
        ".".join(("odoo", "addons", *d.relative_to(ROOT).parts))
        for d in dirs
        if (d / "__init__.py").is_file() and "__pycache__" not in d.parts
    ]


core_packages = find_packages(include=["mango_office", "mango_office.*"])

setup(
    name="mango-odoo",
    version=manifest_version(),
    description="Mango Office cloud PBX telephony for Odoo 18",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="LGPL-3.0-only",
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    package_dir={f"odoo.addons.{a}": a for a in PRESENT_ADDONS},
    packages=core_packages + [p for a in PRESENT_ADDONS for p in addon_packages(a)],
    package_data={
        "mango_office": package_files("mango_office"),
        **{f"odoo.addons.{a}": package_files(a) for a in PRESENT_ADDONS},
    },
    zip_safe=False,
    classifiers=[
        "Framework :: Odoo",
        "Framework :: Odoo :: 18.0",
        "Framework :: Odoo :: 19.0",
        "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
        "Programming Language :: Python :: 3",
    ],
)

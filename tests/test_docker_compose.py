"""docker-compose.yml, checked without a Docker engine.

The file is parsed and its services, images, mounts, ports and start order are
checked against what the demo needs. When a `docker` CLI with the compose plugin is
installed (the v2 plugin, or Compose v1 as Debian packages it), `config` — which needs
no engine — must accept the file too.
"""

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ADDONS = ("mango_telephony", "mango_callback", "mango_ldap")


@pytest.fixture(scope="module")
def compose():
    with COMPOSE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def _volumes(service):
    return {
        source: target.split(":")[0]
        for source, target in (
            v.split(":", 1) for v in service.get("volumes", []) if isinstance(v, str)
        )
    }


def _command_text(service):
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _depends(service):
    depends = service.get("depends_on", {})
    return depends if isinstance(depends, dict) else {d: {} for d in depends}


def test_services_and_images(services):
    assert set(services) == {"db", "simulator", "odoo-init", "odoo"}
    assert services["db"]["image"] == "postgres:16"
    assert services["simulator"]["image"] == "python:3.11-slim"
    # The Odoo series is the demo's choice (MANGO_ODOO_VERSION), 18.0 by default.
    assert services["odoo-init"]["image"] == "odoo:${MANGO_ODOO_VERSION:-18.0}"
    assert services["odoo"]["image"] == "odoo:${MANGO_ODOO_VERSION:-18.0}"


def test_addons_and_core_mounted_into_extra_addons(services):
    for name in ("odoo-init", "odoo"):
        volumes = _volumes(services[name])
        for addon in (*ADDONS, "mango_office"):
            assert volumes.get(f"./{addon}") == f"/mnt/extra-addons/{addon}", (
                name,
                addon,
            )
            assert (ROOT / addon).is_dir()
        assert volumes.get("odoo-data") == "/var/lib/odoo", name
        # The init service runs the demo setup script from the mounted scripts/.
        assert volumes.get("./scripts") == "/mnt/mango-scripts"
    assert (ROOT / "scripts" / "demo_setup.py").is_file()
    for addon in ADDONS:
        assert (ROOT / addon / "__manifest__.py").is_file()


def test_mounts_of_the_checkout_are_read_only(services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert volume.endswith(":ro"), (name, volume)


def test_ports_published_on_loopback_only(services):
    assert services["odoo"]["ports"] == ["127.0.0.1:8069:8069"]
    assert services["simulator"]["ports"] == ["127.0.0.1:8070:8070"]
    for name in ("db", "odoo-init"):
        assert "ports" not in services[name]


def test_start_order(services):
    assert _depends(services["odoo-init"]) == {
        "db": {"condition": "service_healthy"},
        "simulator": {"condition": "service_healthy"},
    }
    assert _depends(services["odoo"]) == {
        "odoo-init": {"condition": "service_completed_successfully"}
    }
    for name in ("db", "simulator"):
        assert services[name]["healthcheck"]["test"], name


def test_simulator_binds_the_container_interface_explicitly(services):
    command = _command_text(services["simulator"])
    assert "pip install" in command and "/src" in command
    words = shlex.split(command.split("exec ", 1)[1])
    assert words[:3] == ["python", "-m", "mango_office.simulator"]
    assert words[words.index("--host") + 1] == "0.0.0.0"
    assert "--allow-any-host" in words
    assert words[words.index("--port") + 1] == "8070"
    assert words[words.index("--webhook-url") + 1] == "http://odoo:8069/mango"
    assert float(words[words.index("--play-every") + 1]) > 0
    # Every option given exists in the simulator's CLI.
    from mango_office.simulator.__main__ import build_parser

    known = {
        option for action in build_parser()._actions for option in action.option_strings
    }
    assert {w for w in words if w.startswith("--")} <= known


def test_simulator_refuses_other_hosts_without_the_flag():
    from mango_office.simulator.__main__ import build_parser
    from mango_office.simulator.core import Simulator

    with pytest.raises(ValueError, match="allow-any-host"):
        Simulator("k", "s", host="0.0.0.0", port=0).start()
    args = build_parser().parse_args(
        ["--api-key", "k", "--api-salt", "s", "--host", "0.0.0.0", "--allow-any-host"]
    )
    assert args.allow_any_host
    sim = Simulator("k", "s", host="0.0.0.0", port=0, allow_any_host=True).start()
    try:
        assert sim.port
    finally:
        sim.stop()


def test_init_creates_the_demo_database_and_wires_the_account(services):
    init = services["odoo-init"]
    command = _command_text(init)
    assert "-i mango_telephony,mango_callback,mango_ldap" in command
    assert "--stop-after-init" in command
    assert "-d mango_demo" in command
    assert "odoo shell" in command and "/mnt/mango-scripts/demo_setup.py" in command
    env = init["environment"]
    assert env["MANGO_DEMO_WIRE_ACCOUNT"] == "1"
    assert env["MANGO_SIM_URL"] == "http://simulator:8070/vpbx"
    assert env["MANGO_SIM_CONTROL"] == "http://simulator:8070/_sim"
    # Simulator and account share the credentials.
    sim_env = services["simulator"]["environment"]
    for name in ("MANGO_API_KEY", "MANGO_API_SALT"):
        assert env[name] == sim_env[name]
    odoo_command = services["odoo"]["command"]
    assert odoo_command[odoo_command.index("-d") + 1] == "mango_demo"


def test_database_credentials_agree(services):
    db_env = services["db"]["environment"]
    odoo_env = services["odoo"]["environment"]
    assert odoo_env["HOST"] == "db"
    assert odoo_env["USER"] == db_env["POSTGRES_USER"]
    assert odoo_env["PASSWORD"] == db_env["POSTGRES_PASSWORD"]
    command = _command_text(services["odoo-init"])
    assert f"--db_user {db_env['POSTGRES_USER']}" in command
    assert f"--db_password {db_env['POSTGRES_PASSWORD']}" in command


def _compose_cli():
    """The command that runs Compose: the v2 plugin, else Compose v1."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file():
    compose_cli = _compose_cli()
    if compose_cli is None:
        pytest.skip(
            "no Compose CLI (docker compose or docker-compose) on this machine;"
            " scripts/test.sh installs Debian's docker-compose when it can"
        )
    # `config` needs no Docker engine: it parses, validates and resolves the file.
    result = subprocess.run(
        [*compose_cli, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr

"""docker-compose.yml and the Dockerfile, kept correct without a Docker engine.

No Docker daemon runs on the development or CI machines, so the compose file is parsed and
checked for the promises of the distributed mode, every command in it is parsed by the
real CLI, and the commands of the ``migrate``, ``worker``, ``beat`` and ``flower`` services
are run natively with the compose environment pointed at the local PostgreSQL and Redis.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import pytest
import yaml
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from tests.conftest import REPO, need

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
NARRATE_SERVICES = ("migrate", "worker", "beat", "flower")
SHARED_ENV = ("NARRATE_DATABASE_URL", "NARRATE_BROKER_URL", "NARRATE_STORAGE_DIR")
PASSED_THROUGH = ("DASHSCOPE_API_KEY",)
#: variables compose may take from the host without README.md describing them
STANDARD_VARIABLES = {"HOME", "USER", "UID", "GID", "PWD", "COMPOSE_PROJECT_NAME"}
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: the local Redis (as for the other tests); the native runs use their own database numbers
#: (9 and 8; tests/jobs uses 10-15), emptied before and after
_TEST_REDIS = urlsplit(os.environ.get("NARRATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
REDIS_HOST, REDIS_PORT, REDIS_DB = _TEST_REDIS.hostname or "127.0.0.1", _TEST_REDIS.port or 6379, 9
BIN = Path(sys.executable).parent
REQUIRED_TABLES = {"jobs", "chapters", "segments", "words", "alembic_version"}

# --- compose semantics --------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, host: Mapping[str, str], seen: set[str] | None = None) -> str:
    """``text`` as compose fills it in from the host environment (``$$`` is a literal ``$``)."""

    def fill(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        if seen is not None:
            seen.add(name)
        op, arg, value = match["op"] or "", match["arg"] or "", host.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("?"):
            if unset:
                raise ValueError(f"{name} is required: {arg}")
            return str(value)
        if op.endswith("+"):
            return "" if unset else arg
        return value or ""

    return _VARIABLE.sub(fill, text)


def interpolated(node: Any, host: Mapping[str, str], seen: set[str] | None = None) -> Any:
    """The whole document (or part of it) with every string value interpolated."""
    if isinstance(node, str):
        return interpolate(node, host, seen)
    if isinstance(node, list):
        return [interpolated(item, host, seen) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, host, seen) for key, value in node.items()}
    return node


def variables_in(node: Any) -> set[str]:
    seen: set[str] = set()
    interpolated(node, {}, seen)
    return seen


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def argv(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> source, from the short and long volume syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        found[target] = source
    return found


def duration_s(text: str) -> float:
    """A compose duration (``1m30s``, ``60s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def container_argv(service: Mapping[str, Any]) -> list[str]:
    """The argv the container runs: ``sh -c`` scripts are split into the command they exec."""
    args = argv(interpolated(service, {}))
    if args[:2] == ["sh", "-c"]:
        args = shlex.split(args[2])
        if args[0] == "exec":
            args = args[1:]
    return args


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


# --- structure --------------------------------------------------------------------------


def test_services_and_one_image(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no version key"
    assert set(services) == {"postgres", "redis", *NARRATE_SERVICES}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in NARRATE_SERVICES:
        build = services[name]["build"]
        if isinstance(build, str):
            build = {"context": build}
        dockerfile = REPO / build["context"] / build.get("dockerfile", "Dockerfile")
        assert dockerfile.resolve() == DOCKERFILE, name
    assert len({services[name].get("image") for name in NARRATE_SERVICES}) == 1


def test_postgres_is_checked_with_pg_isready(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    env = environment(postgres)
    assert env["POSTGRES_USER"] == env["POSTGRES_DB"] == "narrate"
    assert env["POSTGRES_PASSWORD"]
    check = postgres["healthcheck"]["test"]
    assert "pg_isready" in check
    assert any(arg.startswith(("--host=", "-h")) for arg in check), "the init server is socket-only"
    assert mounts(postgres)["/var/lib/postgresql/data"] in compose["volumes"]


def test_redis_keeps_its_queues(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    args = argv(redis)
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--appendonly"] == "yes", "queues must survive a Redis restart"
    assert options["--maxmemory-policy"] == "noeviction", "Redis must never evict a queue"
    assert mounts(redis)["/data"] in compose["volumes"], "the AOF lives in a volume"
    check = redis["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL" and "redis-cli ping" in check[1] and "PONG" in check[1], (
        "redis-cli exits 0 on an error reply, so the answer itself must be checked"
    )


def test_worker_is_scalable(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "--scale worker=N needs generated names"
    assert "ports" not in worker, "--scale worker=N cannot publish one host port N times"
    assert worker["restart"] == "unless-stopped"
    args = container_argv(worker)
    queues = args[args.index("--queues") + 1].split(",")
    assert queues == ["urgent", "normal", "bulk"], "urgent is polled first"


def test_worker_has_time_for_a_soft_shutdown(services: dict[str, Any]) -> None:
    from jobs.app import app

    worker = services["worker"]
    # Celery's SIGTERM is a warm shutdown (running tasks run to the end, however long); only
    # the cold path (SIGQUIT, or SIGTERM remapped to it) has the time-limited soft shutdown
    # that hands unfinished tasks back to the broker.
    stop_signal = worker.get("stop_signal", "SIGTERM")
    if stop_signal == "SIGTERM":
        stop_signal = environment(worker).get("REMAP_SIGTERM") or stop_signal
    assert stop_signal == "SIGQUIT", "docker compose stop would wait for tasks, then SIGKILL"
    grace = duration_s(worker["stop_grace_period"])
    soft = float(app.conf.worker_soft_shutdown_timeout)
    assert soft > 0, "without worker_soft_shutdown_timeout a cold shutdown cancels at once"
    assert grace >= soft + 20, f"SIGKILL after {grace}s cuts a {soft}s soft shutdown short"


def test_one_shot_migration_runs_first(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, service in services.items():
        for other, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits on {other}'s health"


def test_beat_is_a_single_instance(services: dict[str, Any]) -> None:
    beat = services["beat"]
    assert container_argv(beat) == ["narrate", "beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "ports" not in beat


def test_flower_is_published_on_5555(services: dict[str, Any]) -> None:
    flower = services["flower"]
    assert any(str(port).endswith("5555:5555") for port in flower["ports"])
    args = container_argv(flower)
    assert args[:3] == ["celery", "--app", "jobs.app:app"]
    assert args[args.index("flower") + 1 :] == ["--port=5555"]
    assert args[args.index("--broker") + 1] == "$NARRATE_BROKER_URL", (
        "the broker must come from the container's environment"
    )


def test_every_narrate_service_gets_the_shared_environment(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    shared = compose["x-narrate-env"]
    assert set(shared) == {*SHARED_ENV, *PASSED_THROUGH}
    assert shared["NARRATE_STORAGE_DIR"] == "/data/storage"
    for name in NARRATE_SERVICES:
        env = environment(services[name])
        assert {key: env[key] for key in shared} == shared, name

    postgres = environment(services["postgres"])
    database = make_url(shared["NARRATE_DATABASE_URL"])
    assert database.drivername == "postgresql+psycopg"
    assert (database.host, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.database == postgres["POSTGRES_DB"]
    broker = urlsplit(shared["NARRATE_BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)


def test_api_key_is_passed_through_from_the_host(compose: dict[str, Any]) -> None:
    shared = compose["x-narrate-env"]
    for name in PASSED_THROUGH:
        assert interpolate(shared[name], {}) == "", f"{name} has a value in the file"
        assert interpolate(shared[name], {name: "from-the-host"}) == "from-the-host"


def test_no_secret_in_the_file(compose: dict[str, Any], services: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"\bsk-[A-Za-z0-9]{8,}", text), "an API key is in the file"
    for word in re.findall(r"[A-Za-z0-9+/=_-]{24,}", text):
        looks_random = re.search(r"[0-9]", word) and re.search(r"[A-Za-z]", word)
        assert not looks_random, f"a token-like string is in the file: {word[:6]}..."
    envs = {"x-narrate-env": compose["x-narrate-env"]}
    envs.update((name, environment(service)) for name, service in services.items())
    for owner, env in envs.items():
        for key, value in env.items():
            if not SECRET_NAME.search(key) or interpolate(value, {}) == "":
                continue
            # the only literal: the database password, which never leaves the compose network
            assert (owner, key) == ("postgres", "POSTGRES_PASSWORD"), f"{owner}: {key}"
            assert "ports" not in services["postgres"]


def test_every_variable_is_documented(compose: dict[str, Any], services: dict[str, Any]) -> None:
    readme = (REPO / "README.md").read_text()
    for name in variables_in(compose):
        assert f"`{name}`" in readme or name in STANDARD_VARIABLES, f"${{{name}}} is undocumented"
    for name, service in services.items():
        # compose fills these in from the *host*, not from the container's environment
        assert not variables_in(service.get("command", [])), f"{name}: escape $ as $$"


def test_storage_is_shared_by_workers_and_beat(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    storage_dir = compose["x-narrate-env"]["NARRATE_STORAGE_DIR"]
    sources = {mounts(services[name]).get(storage_dir) for name in ("worker", "beat")}
    assert len(sources) == 1
    (source,) = sources
    assert source in compose["volumes"], "storage must be a named volume, not a path"


# --- the commands, parsed by the real command-line interfaces -------------------------------


def parse(group: click.Group, name: str, args: list[str]) -> click.Context:
    """Parse ``args`` as ``group`` would, down to the leaf command, without running it."""
    ctx = click.Context(group, info_name=name)
    command: click.Command = group
    while isinstance(command, click.Group):
        sub_name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None and sub_name is not None
        if not isinstance(sub, click.Group):
            return sub.make_context(sub_name, list(args), parent=ctx)
        command, ctx = sub, click.Context(sub, info_name=sub_name, parent=ctx)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("name", ["migrate", "worker", "beat"])
def test_narrate_commands_parse(services: dict[str, Any], name: str) -> None:
    from narrate.cli import cli

    args = container_argv(services[name])
    assert args[0] == "narrate"
    parse(cli, "narrate", args[1:])  # raises click.UsageError on a renamed command or option


def test_flower_command_parses(services: dict[str, Any]) -> None:
    from celery.bin.celery import celery

    args = container_argv(services["flower"])
    assert args[0] == "celery"
    at = args.index("flower")
    ctx = celery.make_context("celery", args[1:at])
    assert ctx.params["app"] == "jobs.app:app"


# --- the image ----------------------------------------------------------------------------


def test_the_image_installs_what_the_services_run(compose: dict[str, Any]) -> None:
    dockerfile = DOCKERFILE.read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert re.search(r"^FROM python:3\.11-slim-bookworm$", dockerfile, re.MULTILINE)
    assert "pip install --no-cache-dir '.[monitor]'" in dockerfile
    monitor = pyproject["project"]["optional-dependencies"].get("monitor", [])
    assert any(re.match(r"flower\b", spec) for spec in monitor), "flower runs from [monitor]"
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}, "the services run as a non-root user"
    assert compose["x-narrate-env"]["NARRATE_STORAGE_DIR"] in dockerfile, (
        "the storage directory must exist in the image, owned by the user, so that the volume "
        "mounted there is writable"
    )


def test_the_image_copies_every_package() -> None:
    dockerfile = DOCKERFILE.read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        path.parent.name
        for path in REPO.glob("*/__init__.py")
        if any(fnmatch.fnmatch(path.parent.name, p) for p in patterns)
    }
    copied = {
        line.split()[1].rstrip("/") for line in dockerfile.splitlines() if line[:5] == "COPY "
    }
    assert packages and packages <= copied, f"not copied: {packages - copied}"
    assert {"pyproject.toml", "README.md"} <= set(
        re.findall(r"^COPY (.+) \./$", dockerfile, re.MULTILINE)[0].split()
    )
    ignored = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in [*packages, "pyproject.toml", "README.md"]:
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name
    for name in (".venv", ".git", "out"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name


# --- the commands, run natively ----------------------------------------------------------


def redis_url(db: int = REDIS_DB) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


@contextmanager
def own_redis_db(db: int) -> Iterator[str]:
    """A Redis database of this file's own, empty before and after."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        need(False, f"Redis is not reachable at {redis_url(db)}: {exc}")
    client.flushdb()
    try:
        yield redis_url(db)
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def local_redis() -> Iterator[str]:
    with own_redis_db(REDIS_DB) as url:
        yield url


def native_env(
    compose: dict[str, Any], service: str, *, database_url: str, broker_url: str, tmp: Path
) -> dict[str, str]:
    """The service's compose environment, with the service addresses made local."""
    env = interpolated(environment(compose["services"][service]), os.environ)
    database = make_url(env["NARRATE_DATABASE_URL"])
    local = make_url(database_url)
    env["NARRATE_DATABASE_URL"] = database.set(
        host=local.host,
        port=local.port,
        username=local.username,
        password=local.password,
        database=local.database,
    ).render_as_string(hide_password=False)
    broker, local_broker = urlsplit(env["NARRATE_BROKER_URL"]), urlsplit(broker_url)
    env["NARRATE_BROKER_URL"] = urlunsplit(
        broker._replace(netloc=local_broker.netloc, path=local_broker.path)
    )
    env["NARRATE_STORAGE_DIR"] = str(tmp / "storage")
    return {
        **os.environ,
        **env,
        "NARRATE_HOME": str(tmp / "home"),
        "TMPDIR": str(tmp),  # beat keeps its schedule in the temporary directory
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run_migrate(compose: dict[str, Any], postgres_url: str, broker: str, tmp: Path) -> None:
    env = native_env(compose, "migrate", database_url=postgres_url, broker_url=broker, tmp=tmp)
    result = subprocess.run(
        container_argv(compose["services"]["migrate"]),
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_migrate_command_creates_the_schema(
    compose: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    run_migrate(compose, postgres_url, redis_url(), tmp_path)
    engine = create_engine(postgres_url)
    try:
        assert set(inspect(engine).get_table_names()) >= REQUIRED_TABLES
    finally:
        engine.dispose()
    run_migrate(compose, postgres_url, redis_url(), tmp_path)  # a restart of migrate is harmless


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(
    check: Callable[[], bool], deadline: float, procs: list[subprocess.Popen[bytes]]
) -> bool:
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            return False
        if check():
            return True
        time.sleep(0.5)
    return False


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_worker_and_beat_start_answer_and_stop(
    compose: dict[str, Any], postgres_url: str, local_redis: str, tmp_path: Path
) -> None:
    from celery import Celery

    from jobs.app import app as narrate_app

    services = compose["services"]
    run_migrate(compose, postgres_url, local_redis, tmp_path)
    # a client of the local broker only (jobs.app.app stays as other tests expect it)
    client = Celery("compose-test", broker=local_redis, set_as_current=False)
    client.conf.control_exchange = narrate_app.conf.control_exchange
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "beat")}
    try:
        for name in ("beat", "worker"):
            env = native_env(
                compose, name, database_url=postgres_url, broker_url=local_redis, tmp=tmp_path
            )
            procs[name] = start(container_argv(services[name]), env, tmp_path, logs[name])

        def fed() -> bool:
            """The worker answers, and has run a task that beat sent (they share the broker)."""
            stats = client.control.inspect(timeout=1.0).stats() or {}
            return any("narrate.feed" in node.get("total", {}) for node in stats.values())

        deadline = time.monotonic() + 60
        assert wait_for(fed, deadline, list(procs.values())), "\n".join(
            f"--- {name}\n{tail(log)}" for name, log in logs.items()
        )
        replies = client.control.ping(timeout=1.0)
        assert replies, "the worker does not answer a ping"
        queues = client.control.inspect(timeout=1.0).active_queues() or {}
        consumed = {queue["name"] for node in queues.values() for queue in node}
        for priority in ("urgent", "normal", "bulk"):
            assert any(priority in queue for queue in consumed), (priority, consumed)

        for proc in procs.values():  # `docker compose stop`: SIGTERM, then the grace period
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            grace = duration_s(services[name].get("stop_grace_period", "10s"))
            try:
                code = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still runs {grace}s after SIGTERM:\n{tail(logs[name])}")
            assert code >= 0, f"{name} died of signal {-code} instead of exiting"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flower_serves_the_broker(compose: dict[str, Any], tmp_path: Path) -> None:
    need(
        importlib.util.find_spec("flower") is not None, "flower (extra 'monitor') is not installed"
    )
    with own_redis_db(REDIS_DB - 3) as broker_url:  # not the worker test's nor the throttle's (8)
        run_flower(compose, broker_url, tmp_path)


def run_flower(compose: dict[str, Any], broker_url: str, tmp_path: Path) -> None:
    flower = compose["services"]["flower"]
    env = native_env(
        compose,
        "flower",
        database_url="postgresql+psycopg://unused@127.0.0.1/unused",
        broker_url=broker_url,
        tmp=tmp_path,
    )
    port = free_port()
    script = argv(interpolated(flower, {}))[2].replace("--port=5555", f"--port={port}")
    log = tmp_path / "flower.log"
    proc = start(["sh", "-c", script], env, tmp_path, log)
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=1) as r:
                    body: bytes = r.read()
                    return body == b"OK"
            except OSError:
                return False

        assert wait_for(healthy, time.monotonic() + 30, [proc]), tail(log)
        broker = re.search(r"Broker: (\S+)", log.read_text())
        local = urlsplit(broker_url)
        assert broker and broker[1].endswith(local.netloc + local.path), tail(log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

"""What `sam build` made (.aws-sam/build): each function's artifact holds handlers/, shared/ and requirements.txt
built for Lambda's arm64 Python, nothing else, and runs its handler with only that plus what the Lambda runtime
provides (boto3 and its dependencies). `make test` builds first and sets REQUIRE_SAM_BUILD, as CI does: there a
missing or stale build fails these tests; a bare `pytest` skips them with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local_gateway.dynamodb.embedded import ensure_table
from local_gateway.template import Template
from shared.clients import dynamodb_client
from shared.config import Config
from shared.fanout import FANOUT_KEY
from shared.snapshots import LatestSnapshot
from shared.store import Store
from shared.table import Table
from tests import stack
from tests.support.events import connect_event, disconnect_event, load_event, message_event
from tests.support.management_api import ManagementApiEndpoint

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
REQUIRED = bool(os.environ.get("REQUIRE_SAM_BUILD") or os.environ.get("CI"))
TEMPLATE = Template.load()
FUNCTIONS = sorted(stack.functions(TEMPLATE))
PACKAGED = ("handlers", "shared")
# What the Lambda Python runtime itself provides to every function.
LAMBDA_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
ELF_AARCH64 = 183
LAMBDA_MARKERS = {
    "python_version": "3.14",
    "python_full_version": "3.14.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
}
X = "XXXXXXXXXXXXXXX="


def source_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for top in PACKAGED
        for path in sorted((root / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def requirements(logical_id: str) -> list[Requirement]:
    """What the function ships: requirements.txt, and requirements-auth.txt for the two that check tokens:
    $connect, and $default (Socket.IO's namespace CONNECT may carry the token)."""
    checks_tokens = logical_id in ("ConnectFunction", "DefaultFunction")
    files = ["requirements.txt", *(["requirements-auth.txt"] if checks_tokens else [])]
    lines = [line for name in files for line in (ROOT / name).read_text().splitlines()]
    return [Requirement(line) for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]


def installed(artifact: Path) -> dict[str, Path]:
    """The distributions pip installed into the artifact, by canonical name."""
    return {
        canonicalize_name(p.name.removesuffix(".dist-info").rsplit("-", 1)[0]): p for p in artifact.glob("*.dist-info")
    }


def closure(dist_infos: dict[str, Path], logical_id: str) -> set[str]:
    """The function's requirements and everything they need on Lambda's arm64 Python, from the installed metadata."""
    needed: set[str] = set()
    todo = requirements(logical_id)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        metadata_file = Parser().parsestr((dist_infos[name] / "METADATA").read_text())
        for raw in metadata_file.get_all("Requires-Dist") or []:
            dependency = Requirement(raw)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**LAMBDA_MARKERS, "extra": extra}) for extra in requirement.extras or {""}
            ):
                todo.append(dependency)
    return needed


@pytest.fixture(scope="module")
def build() -> Path:
    """The build directory; a missing or stale one skips these tests, or fails them under `make test` and CI."""
    problem = None
    if not (BUILD / "template.yaml").exists():
        problem = "no `sam build` output in .aws-sam/build"
    elif source_files(BUILD / FUNCTIONS[0]) != source_files(ROOT):
        problem = "the build is older than handlers/ or shared/"
    if problem is not None:
        (pytest.fail if REQUIRED else pytest.skip)(f"{problem}: run `make build`")
    return BUILD


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the packages the Lambda runtime provides, linked from the dev virtualenv."""
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    for name in LAMBDA_RUNTIME:
        distribution = metadata.distribution(name)
        tops = {f.parts[0] for f in distribution.files or []} - {"..", "__pycache__"}
        for top in (t for t in tops if not t.endswith(".dist-info")):
            target = Path(distribution.locate_file(top))
            if target.exists() and not (runtime / top).exists():
                (runtime / top).symlink_to(target)
    return runtime


def claimed(dist_info: Path) -> set[str]:
    """The top-level names a distribution installed (its RECORD), less what the build removes (bin/)."""
    lines = (dist_info / "RECORD").read_text().splitlines()
    return {line.split(",", 1)[0].split("/", 1)[0] for line in lines} - {"bin", ".."}


def test_artifact_every_function_was_built(build: Path):
    built = Template.load(build / "template.yaml")
    assert sorted(stack.functions(built)) == FUNCTIONS
    for logical_id in FUNCTIONS:
        assert built.resources[logical_id]["Properties"]["CodeUri"] == logical_id
        assert built.function_handler(logical_id) == TEMPLATE.function_handler(logical_id)
        assert (build / logical_id).is_dir()


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_artifact_holds_handlers_shared_and_requirements_only(build: Path, logical_id: str):
    artifact = build / logical_id
    assert source_files(artifact) == source_files(ROOT)
    dist_infos = installed(artifact)
    assert set(dist_infos) == closure(dist_infos, logical_id)
    for requirement in requirements(logical_id):
        version = dist_infos[canonicalize_name(requirement.name)].name.removesuffix(".dist-info").rsplit("-", 1)[1]
        assert requirement.specifier.contains(version), (requirement, version)
    expected = {*PACKAGED, *(name for dist_info in dist_infos.values() for name in claimed(dist_info))}
    assert {p.name for p in artifact.iterdir()} == expected
    assert not list(artifact.rglob("__pycache__"))


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_artifact_native_code_is_built_for_lambda_arm64(build: Path, logical_id: str):
    libraries = list((build / logical_id).rglob("*.so")) + list((build / logical_id).rglob("*.so.*"))
    assert libraries, "psutil ships a compiled extension; none found"
    for library in libraries:
        header = library.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_AARCH64, library
    for wheel in (build / logical_id).glob("*.dist-info/WHEEL"):
        tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
        assert any(tag.endswith("aarch64") or tag.endswith("-any") for tag in tags), wheel


RUN = r"""
import importlib, json, platform, sys, sysconfig
artifact, runtime, dotted, event = sys.argv[1:5]
sys.path[:0] = [artifact, runtime]
module, name = dotted.rsplit(".", 1)
result = getattr(importlib.import_module(module), name)(json.loads(event), None)
if platform.machine() == "aarch64":
    import psutil  # the packaged one loads only where Lambda runs: on arm64
allowed = (artifact, runtime, sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
files = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
outside = sorted(n for n, f in files.items() if f and not f.startswith(allowed))
print(json.dumps({"result": result, "outside": outside}))
"""


def run_isolated(
    artifact: Path, runtime: Path, dotted: str, event: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """Python with no site-packages at all (-I -S): the artifact and the runtime's packages are all it sees."""
    process = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", RUN, str(artifact), str(runtime), dotted, json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=artifact,
        env=env,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.splitlines()[-1])


def event_for(logical_id: str) -> tuple[dict[str, Any], int, list[str]]:
    """An event the function handles without computing metrics (psutil's arm64 build cannot load on x86),
    the status it answers, and the frames it posts to X."""
    routes = {function: route for route, function in TEMPLATE.route_functions().items()}
    if logical_id == "PublishMetricsFunction":
        return load_event("scheduled"), 200, []  # nobody subscribed: a tick with nothing to push
    if logical_id == "ReconcileFunction":
        return load_event("scheduled"), 200, []  # an empty table: one short pass
    if logical_id == "PublishDashboardUpdateFunction":
        return load_event("dashboard_update"), 200, []
    if logical_id == "ReportMetricFunction":
        return load_event("metric_report"), 200, []
    if logical_id == "SocketIOOpenFunction":  # posts the Engine.IO open packet, which is not a JSON frame
        return {"open": {"connectionId": X, "endpoint": None}}, 200, []
    if logical_id == "FanoutWorkerFunction":
        frame = json.dumps({"event": "analytics:liveMetrics", "data": []})
        return {FANOUT_KEY: {"connectionIds": [X], "frame": frame}}, 200, ["analytics:liveMetrics"]
    route = routes[logical_id]
    if route == "$connect":
        return connect_event(X), 200, []
    if route == "$disconnect":
        return disconnect_event(X), 200, []
    if route == "$default":
        return message_event(X, "analytics:nope"), 404, ["analytics:error"]
    if route == "analytics:subscribeLiveMetrics":
        return message_event(X, route), 410, ["analytics:error"]  # X is not connected here: refused, told so
    if route == "analytics:requestLiveMetrics":
        return message_event(X, route), 410, ["analytics:error"]  # X is not connected here: refused, told so
    return message_event(X, route, *(("sales",) if "Dashboard" in route else ())), 200, []


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_artifact_runs_its_handler_with_only_what_was_packaged(
    build: Path, lambda_runtime: Path, moto_endpoint: str, management_api: ManagementApiEndpoint, logical_id: str
):
    table = f"analytics-{uuid.uuid4().hex[:8]}"
    config = Config.from_env({"TABLE_NAME": table, "DYNAMODB_ENDPOINT_URL": moto_endpoint})
    store = Store(Table(dynamodb_client(config), table))
    ensure_table(store.table.client, table, TEMPLATE)
    # $connect registers X itself; subscribe and request would compute metrics for a registered X (psutil's
    # arm64 build cannot load here), so X stays out and they refuse it.
    if logical_id not in ("ConnectFunction", "SubscribeLiveMetricsFunction", "RequestLiveMetricsFunction"):
        store.add_connection(X, None)
    latest = LatestSnapshot(store.table, config.metrics_interval_seconds)
    latest.save([{"name": "Active Users", "value": 1, "timestamp": "2026-11-25T10:00:00.000Z"}])
    env = {
        **stack.environment(TEMPLATE, logical_id, stack.local_refs(TEMPLATE, table)),
        "CONNECTIONS_ENDPOINT_URL": management_api.url,
        "DYNAMODB_ENDPOINT_URL": moto_endpoint,
        "PUBLISH_WINDOW_SECONDS": "0",
        "RECONCILE_SETTLE_SECONDS": "0",  # the reconciler's wait for requests in flight: none here
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": stack.REGION,
    }
    event, status, frames = event_for(logical_id)
    ran = run_isolated(build / logical_id, lambda_runtime, TEMPLATE.function_handler(logical_id), event, env)
    assert ran["result"]["statusCode"] == status, ran["result"]
    assert [frame["event"] for frame in management_api.events(X)] == frames
    if logical_id == "SocketIOOpenFunction":
        (opened,) = management_api.raw_frames(X)
        assert opened.startswith('0{"sid":') and '"upgrades":[]' in opened
    assert ran["outside"] == []


def test_artifact_isolation_hides_the_dev_virtualenv(build: Path, lambda_runtime: Path):
    """The isolated interpreter cannot reach what the dev virtualenv has and the artifact lacks."""
    process = subprocess.run(
        [
            sys.executable,
            *("-I", "-S", "-B", "-c", "import sys; sys.path[:0] = sys.argv[1:3]; import yaml"),
            str(build / FUNCTIONS[0]),
            str(lambda_runtime),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0 and "No module named 'yaml'" in process.stderr

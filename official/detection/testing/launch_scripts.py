"""Helpers for tests of the launch scripts in test/: running them, rank tables, and
reading what they print and write."""

import json
import os
import shlex
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT_DIR = os.path.join(REPO, "test")
TINY_CONFIG = os.path.join(REPO, "official", "detection", "testing", "retinanet_tiny.yaml")
FAKE_BRIDGE = os.path.join(REPO, "official", "detection", "testing", "fake_npu_bridge")
SCRIPTS = (
    "train_full_1p.sh",
    "train_full_8p.sh",
    "train_performance_1p.sh",
    "train_performance_8p.sh",
    "train_performance_multinodes.sh",
)
# Variables of an outer launch that must not leak into a test's script run.
LAUNCH_ENV = ("TF_CONFIG", "RANK_SIZE", "RANK_ID", "DEVICE_ID", "ASCEND_DEVICE_ID", "PYTHONPATH")


def script_env(**extra):
    """The environment for a script run: this Python, quiet TF, no outer launch variables."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env.update(PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def start_script(name, *args, env=None):
    return subprocess.Popen(
        ["bash", os.path.join(SCRIPT_DIR, name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env or script_env(),
    )


def finish(process, timeout=900):
    """Waits for a started script; returns a CompletedProcess."""
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run_script(name, *args, env=None, timeout=120):
    return finish(start_script(name, *args, env=env), timeout=timeout)


def write_rank_table(path, servers, devices):
    """A v1.0 rank table of `servers` x `devices`; returns its path as a str."""
    server_list = []
    for s in range(servers):
        entries = [
            {
                "device_id": str(d),
                "device_ip": f"192.168.{d}.{s + 1}",
                "rank_id": str(s * devices + d),
            }
            for d in range(devices)
        ]
        server_list.append({"server_id": f"10.0.0.{s + 1}", "device": entries})
    table = {"server_count": str(servers), "server_list": server_list}
    table.update(status="completed", version="1.0")
    with open(path, "w") as stream:
        json.dump(table, stream)
    return str(path)


def parse_dry_run(stdout):
    """The training commands a --dry_run printed: [(env dict, {flag: value})]."""
    commands = []
    for line in stdout.splitlines():
        if "official/detection/main.py" not in line:
            continue
        words = shlex.split(line)
        start = next(i for i, w in enumerate(words) if w.endswith("main.py"))
        env = dict(w.split("=", 1) for w in words[:start] if "=" in w)
        flags = dict(a[2:].split("=", 1) for a in words[start + 1 :])
        commands.append((env, flags))
    return commands


def override_pairs(flags):
    """The dotted --params_override pairs of a parsed command as a dict."""
    return dict(item.split("=", 1) for item in flags["params_override"].split(","))


def read_summary_file(path):
    """The `Key = value` lines of a <CaseName>.log as an ordered dict."""
    values = {}
    with open(path) as stream:
        for line in stream:
            key, _, value = line.partition(" = ")
            values[key.strip()] = value.strip()
    return values


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports

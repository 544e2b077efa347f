"""Capture what docker, podman and containerd's CRI hand the runtime: run the client tests
once with PYRUNC_IT_KEEP=1 (their runtimes are logging launchers, integration/sandbox.py),
then copy each config.json the launcher saved and the runtime calls it logged into
integration/data/clients/, with the temporary directories and ids made generic.

    sudo PYRUNC_IT_RUNTIMES=pyrunc .venv/bin/python -m integration.capture_clients

The files are test data (test_client_resources.py) and the source of docs/CLIENTS.md's
"calls" sections: recapture when a client's version changes.
"""
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "clients")
TESTS = {"docker": "test_docker.py", "podman": "test_podman_net.py", "cri": "test_cri.py"}
PREFIX = {"docker": "pyrunc-docker-", "podman": "pyrunc-podman-net-", "cri": "pyrunc-cri-"}


def generic(text, base):
    text = text.replace(base, "BASE")
    text = re.sub(r"\b[0-9a-f]{64}\b", "ID", text)
    text = re.sub(r"pyrunc-it-(docker|podman|cri)-[0-9a-f]{8}", r"CGROUP-PARENT", text)
    return re.sub(r"/tmp/runc-process\d+", "/tmp/runc-processN", text)


def main():
    env = dict(os.environ, PYRUNC_IT_KEEP="1", PYRUNC_IT_RUNTIMES="pyrunc")
    os.makedirs(OUT, exist_ok=True)
    for client, test in TESTS.items():
        before = set(glob.glob(f"/tmp/{PREFIX[client]}*"))
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(HERE, test)], env=env, check=True)
        base, = set(glob.glob(f"/tmp/{PREFIX[client]}*")) - before
        configs = sorted(glob.glob(f"{base}/captured/config-*.json"), key=os.path.getmtime)
        seen = []
        for path in configs:
            with open(path) as f:
                config = json.loads(generic(f.read(), base))
            linux = config.get("linux", {})
            kind = (linux.get("resources"), [n["type"] for n in linux.get("namespaces", [])])
            if kind in seen:
                continue  # the same resources and namespaces as a config kept already
            seen.append(kind)
            with open(os.path.join(OUT, f"{client}-{len(seen) - 1}.json"), "w") as f:
                json.dump(config, f, indent=1, sort_keys=True)
                f.write("\n")
        with open(f"{base}/calls-pyrunc.txt") as f, \
                open(os.path.join(OUT, f"{client}-calls.txt"), "w") as out:
            out.write(generic(f.read(), base))
        subprocess.run(["rm", "-rf", base], check=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""End to end: a pod's SDK gets its association's credentials through the
agent, as on an EKS node.

The real server (local credential provider) and the real agent, both from
the binary under test on 127.0.0.1 port 0; a cluster and an association made
through boto3's `eks` client; a service-account token from the server's
admin route; then boto3's container credential provider, pointed at the
agent with AWS_CONTAINER_CREDENTIALS_FULL_URI and
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, must resolve exactly the credentials
the server minted for the association's role.

With --sts it runs again with the `sts` credential provider against moto's
STS (moto_server, started here): the association has a target role and an
external ID, and `sts.get_caller_identity()` with the resolved credentials
must name the target role's assumed-role ARN.

Needs boto3 (and moto for --sts): the venv `.ci/run` builds has both.
Needs the server's AssumeRoleForPodIdentity route and admin token route.
Run from the repository root after `cargo build`:

    target/ci-venv/bin/python tests/agent_e2e.py target/debug/pod-identity-store
    target/ci-venv/bin/python tests/agent_e2e.py target/debug/pod-identity-store --sts

It prints one line per step and exits non-zero on the first failure.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.session

ACCOUNT = "123456789012"
TARGET_ACCOUNT = "111122223333"
REGION = "us-east-1"
CLUSTER = "e2e"
NAMESPACE = "default"
SERVICE_ACCOUNT = "web"
POD_NAME = "web-0"
POD_UID = "0b9a6f3e-2d1c-4b1e-9a51-7d2a4c550f8c"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/web-app"
TARGET_ROLE = f"arn:aws:iam::{TARGET_ACCOUNT}:role/data-reader"
START_TIMEOUT = 60
# Every AWS variable that could make boto3 find credentials elsewhere.
AWS_VARS = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ENDPOINT_URL",
]


def step(message):
    print(f"agent_e2e: {message}", flush=True)


def fail(message):
    print(f"agent_e2e: FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Process:
    """A child that prints `ready_prefix` + its address once it serves."""

    def __init__(self, args, ready_prefix, env, log_path):
        self.log = open(log_path, "ab")
        self.log_path = log_path
        self.child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.log, env=env, text=True)
        lines = []
        # The ready line, read on a thread so a silent child cannot hang us.
        reader = threading.Thread(
            target=lambda: lines.append(self.child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        line = lines[0] if lines else ""
        if not line.startswith(ready_prefix):
            self.stop()
            with open(log_path, encoding="utf-8", errors="replace") as log:
                fail(f"{args[0]} {args[1:]} gave no ready line (got {line!r}); its log:\n{log.read()}")
        self.url = "http://" + line[len(ready_prefix):].strip()
        # Keep draining stdout so the child never blocks on it.
        threading.Thread(target=self.child.stdout.read, daemon=True).start()

    def stop(self):
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        self.log.close()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in AWS_VARS and not k.startswith("POD_IDENTITY_STORE_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def start_moto(work):
    program = os.environ.get("MOTO_SERVER") or shutil.which("moto_server") or os.path.join(
        os.path.dirname(sys.executable), "moto_server")
    check(os.path.exists(program), "moto_server not found: set MOTO_SERVER or use the .ci/run venv")
    port = free_port()
    log = open(os.path.join(work, "moto.log"), "ab")
    child = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(port)],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            check(child.poll() is None and time.monotonic() < deadline,
                  "moto_server did not start")
            time.sleep(0.05)
    return child, f"http://127.0.0.1:{port}"


def resolve_through_agent(agent_url, token_file):
    """What boto3's default chain resolves with only the container
    provider's two variables set, as in a pod."""
    saved = dict(os.environ)
    pod_env = clean_env(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{agent_url}/v1/credentials",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token_file,
    )
    try:
        os.environ.clear()
        os.environ.update(pod_env)
        session = botocore.session.get_session()
        credentials = session.get_credentials()
        check(credentials is not None, "boto3 resolved no credentials through the agent")
        check(credentials.method == "container-role",
              f"boto3 resolved credentials from {credentials.method!r}, not the container provider")
        return credentials.get_frozen_credentials()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(binary, sts):
    work = tempfile.mkdtemp(prefix="agent-e2e-")
    processes = []
    try:
        server_env = clean_env()
        config = os.path.join(work, "config.toml")
        with open(config, "w") as f:
            f.write(f'[aws]\nregion = "{REGION}"\naccount_id = "{ACCOUNT}"\n')
            if sts:
                moto, moto_url = start_moto(work)
                processes.append(moto)
                f.write(f'[eks_auth]\ncredentials = "sts"\n[eks_auth.sts]\nendpoint_url = "{moto_url}"\n')
                # The server's own credentials, from the standard chain.
                server_env.update(AWS_ACCESS_KEY_ID="AKIDSERVER", AWS_SECRET_ACCESS_KEY="server-secret")
        server = Process(
            [binary, "--config", config, "--listen", "127.0.0.1:0",
             "--data-dir", os.path.join(work, "data"), "serve"],
            "pod-identity-store listening on http://", server_env, os.path.join(work, "server.log"))
        processes.append(server)
        step(f"server on {server.url} ({'sts provider, moto' if sts else 'local provider'})")

        eks = boto3.client("eks", region_name=REGION, endpoint_url=server.url,
                           aws_access_key_id="test", aws_secret_access_key="test")
        eks.create_cluster(name=CLUSTER, roleArn=f"arn:aws:iam::{ACCOUNT}:role/cluster",
                           resourcesVpcConfig={"subnetIds": ["subnet-1"]})
        association = {"clusterName": CLUSTER, "namespace": NAMESPACE,
                       "serviceAccount": SERVICE_ACCOUNT, "roleArn": ROLE}
        if sts:
            # The server generates the external ID that goes with a target role.
            association.update(targetRoleArn=TARGET_ROLE)
        association = eks.create_pod_identity_association(**association)["association"]
        step(f"association {association['associationId']} for {NAMESPACE}/{SERVICE_ACCOUNT}")

        status, minted = http_json(
            "POST", f"{server.url}/admin/v1/clusters/{CLUSTER}/service-account-token",
            {"namespace": NAMESPACE, "serviceAccount": SERVICE_ACCOUNT,
             "podName": POD_NAME, "podUid": POD_UID})
        check(status == 200, f"the service-account token route answered {status}: {minted}")
        token_file = os.path.join(work, "eks-pod-identity-token")
        with open(token_file, "w") as f:
            f.write(minted["token"])

        agent = Process(
            [binary, "agent", "--listen", "127.0.0.1:0", "--server", server.url,
             "--cluster", CLUSTER, "--access-key-id", "AKIDAGENT",
             "--secret-access-key", "agent-secret"],
            "pod-identity-store agent listening on http://", clean_env(), os.path.join(work, "agent.log"))
        processes.append(agent)
        step(f"agent on {agent.url}")

        resolved = resolve_through_agent(agent.url, token_file)
        step(f"boto3 resolved {resolved.access_key} through the agent")

        # What the agent answered for the token (from its cache: the same
        # credentials the server minted for boto3's call).
        request = urllib.request.Request(f"{agent.url}/v1/credentials",
                                         headers={"Authorization": minted["token"]})
        with urllib.request.urlopen(request, timeout=30) as response:
            answered = json.load(response)
        check((resolved.access_key, resolved.secret_key, resolved.token)
              == (answered["AccessKeyId"], answered["SecretAccessKey"], answered["Token"]),
              f"boto3 resolved {resolved.access_key}, the agent answered {answered['AccessKeyId']}")

        if sts:
            check(answered["AccountId"] == TARGET_ACCOUNT,
                  f"AccountId {answered['AccountId']}, want the target role's {TARGET_ACCOUNT}")
            caller = boto3.client(
                "sts", region_name=REGION, endpoint_url=moto_url,
                aws_access_key_id=resolved.access_key, aws_secret_access_key=resolved.secret_key,
                aws_session_token=resolved.token).get_caller_identity()
            want = f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/data-reader/eks-{CLUSTER}-{POD_NAME}-"
            check(caller["Arn"].startswith(want),
                  f"get_caller_identity names {caller['Arn']}, want {want}…")
            step(f"get_caller_identity: {caller['Arn']}")
        else:
            check(resolved.access_key.startswith("ASIA"), f"access key {resolved.access_key}")
            check(answered["AccountId"] == ACCOUNT, f"AccountId {answered['AccountId']}")
            # The server's own record of what it minted.
            status, record = http_json("GET", f"{server.url}/admin/v1/credentials/{resolved.access_key}")
            check(status == 200, f"the server has no record of {resolved.access_key}: {status} {record}")
            record_text = json.dumps(record)
            for expected in (ROLE, NAMESPACE, SERVICE_ACCOUNT, POD_NAME, POD_UID,
                             association["associationArn"]):
                check(expected in record_text, f"the server's record lacks {expected}: {record}")
            step(f"the server minted {resolved.access_key} for {ROLE}")
        step("passed")
    finally:
        for process in reversed(processes):
            if isinstance(process, Process):
                process.stop()
            else:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the pod-identity-store binary under test")
    parser.add_argument("--sts", action="store_true",
                        help="use the sts credential provider against moto's STS")
    args = parser.parse_args()
    run(os.path.abspath(args.binary), args.sts)


if __name__ == "__main__":
    main()

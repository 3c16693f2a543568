#!/usr/bin/env python3
"""Switchable faults met by boto3's own retry logic (standard mode).

Usage: tests/faults_clients.py PATH/TO/pod-identity-store

Starts the binary on 127.0.0.1 port 0 with a temporary data dir, sets fault
rules through PUT /admin/v1/faults, and drives boto3's EKS client with
retries in standard mode, as a controller or script would: throttling and
lost answers are retried until the call succeeds, a lost Create answer ends
in exactly one association, and /metrics counts every injected fault. The
server is SIGKILLed on every exit. Talks to 127.0.0.1 only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
READY = "pod-identity-store listening on "
START_TIMEOUT = 30


def role(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


class Server:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp()
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            line = self.process.stdout.readline()
            if line.startswith(READY):
                self.base = line[len(READY):].strip()
                break
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start: {self.log_tail()}")

    def log_tail(self):
        self.log.seek(0)
        return "".join(self.log.readlines()[-40:])

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    def put_faults(self, document):
        return json.loads(self.request("PUT", "/admin/v1/faults", document))

    def sample(self, series):
        """The value of one series of /metrics, 0 when absent."""
        for line in self.request("GET", "/metrics").splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    def injected(self, kind, operation):
        return self.sample(
            f'pod_identity_store_faults_injected_total{{kind="{kind}",operation="{operation}"}}'
        )

    def answered(self, operation, status):
        return self.sample(
            f'pod_identity_store_requests_total{{operation="{operation}",status="{status}"}}'
        )

    def eks(self, total_max_attempts=10):
        return boto3.client(
            "eks",
            region_name="us-east-1",
            endpoint_url=self.base,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": total_max_attempts}
            ),
        )

    def given_cluster(self, name):
        self.eks().create_cluster(name=name, roleArn=role("eks-cluster-role"), resourcesVpcConfig={})


def test_standard_retries_ride_out_throttling_and_the_metrics_count_it(server):
    server.given_cluster("dev")
    # A token every 250 ms and none spare: back-to-back calls are throttled.
    server.put_faults({"rules": [
        {"operations": ["DescribeCluster"], "kind": "throttle", "rate_per_second": 4, "burst": 1},
    ]})
    eks = server.eks()
    for _ in range(3):
        assert eks.describe_cluster(name="dev")["cluster"]["name"] == "dev"
    throttled = server.injected("throttle", "DescribeCluster")
    assert throttled >= 1, throttled
    assert server.answered("DescribeCluster", 429) == throttled
    assert server.answered("DescribeCluster", 200) == 3


def test_standard_retries_ride_out_unavailable_answers(server):
    server.given_cluster("dev")
    # Seed 0 at 0.5: the 2nd and 3rd ListClusters meet 503, the rest pass.
    server.put_faults({"seed": 0, "rules": [
        {"operations": ["ListClusters"], "kind": "error",
         "type": "ServiceUnavailableException", "probability": 0.5},
    ]})
    eks = server.eks()
    for _ in range(2):
        assert eks.list_clusters()["clusters"] == ["dev"]
    assert server.injected("error", "ListClusters") == 2
    assert server.answered("ListClusters", 503) == 2


def test_a_retry_after_a_lost_create_answer_ends_with_one_association(server):
    server.given_cluster("dev")
    # Seed 3 at 0.5: the first Create's answer is lost, the retry's is not.
    server.put_faults({"seed": 3, "rules": [
        {"operations": ["CreatePodIdentityAssociation"], "kind": "error_after_commit",
         "probability": 0.5},
    ]})
    eks = server.eks()
    created = eks.create_pod_identity_association(
        clusterName="dev", namespace="ns", serviceAccount="app", roleArn=role("app")
    )["association"]
    listed = eks.list_pod_identity_associations(clusterName="dev")["associations"]
    assert [a["associationId"] for a in listed] == [created["associationId"]], listed
    assert server.injected("error_after_commit", "CreatePodIdentityAssociation") == 1
    assert server.answered("CreatePodIdentityAssociation", 500) == 1


def test_a_rule_for_one_cluster_does_not_touch_another(server):
    server.given_cluster("red")
    server.given_cluster("blue")
    server.put_faults({"rules": [
        {"operations": ["*"], "clusters": ["red"], "kind": "error"},
    ]})
    eks = server.eks(total_max_attempts=1)
    for _ in range(5):
        assert eks.describe_cluster(name="blue")["cluster"]["status"] == "ACTIVE"
    try:
        eks.describe_cluster(name="red")
        raise AssertionError("red was not faulted")
    except eks.exceptions.ServerException as e:
        assert "injected by fault rule 0" in str(e), e
    assert server.injected("error", "DescribeCluster") == 1


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/pod-identity-store"
    tests = [(name, f) for name, f in globals().items() if name.startswith("test_")]
    passed = failed = 0
    for name, test in tests:
        server = Server(binary)
        started = time.monotonic()
        try:
            test(server)
            passed += 1
            print(f"ok: {name} ({time.monotonic() - started:.1f} s)")
        except Exception:
            failed += 1
            print(f"FAILED: {name}\n{traceback.format_exc()}--- server log:\n{server.log_tail()}")
        finally:
            server.stop()
    print(f"faults_clients: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

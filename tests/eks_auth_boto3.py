"""AssumeRoleForPodIdentity through boto3's own `eks-auth` client.

Usage: python tests/eks_auth_boto3.py PATH/TO/pod-identity-store

Starts the binary on 127.0.0.1 port 0 with a temporary data dir (again after
a SIGKILL for the restart test), sets clusters and associations up with
boto3's `eks` client, gets tokens from the admin route (or signs them with a
key of its own, registered as an external issuer), and checks what boto3's
`eks-auth` client answers: the credential and ARN formats, session tags,
chaining, the policy, every error type, a restart, and association changes.
Talks to 127.0.0.1 only. Needs boto3 and PyJWT with its crypto extra.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import boto3
import botocore.config
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

BIN = None
ACCOUNT = "123456789012"
AUDIENCE = "pods.eks.amazonaws.com"
START_TIMEOUT = 30
READY = re.compile(r"pod-identity-store listening on (http://\S+)")


def role(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


class Server:
    """The binary on port 0 with its data dir; started again on the same dir."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.url = None

    def start(self):
        with open(os.path.join(os.path.dirname(self.data_dir), "server.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [BIN, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir],
                stdout=subprocess.PIPE,
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("POD_IDENTITY_STORE_")},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("the server did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=START_TIMEOUT)
        if self.proc:
            self.proc.stdout.close()

    def client(self, service):
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


class ExternalIssuer:
    """A kind cluster's issuer stand-in: a key of the test's own."""

    def __init__(self, issuer, algorithm):
        self.issuer = issuer
        self.algorithm = algorithm
        self.kid = f"kind-{algorithm.lower()}"
        if algorithm == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": algorithm, "use": "sig"})
        self.jwks = {"keys": [jwk]}

    def token(self, namespace, service_account, expires_in=600):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": [AUDIENCE],
            "iat": now - 7200,
            "nbf": now - 7200,
            "exp": now + expires_in,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": "sa-uid"},
                "pod": {"name": "kind-pod", "uid": "kind-pod-uid"},
            },
        }
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})


class EksAuthThroughBoto3(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.server = Server(os.path.join(self.dir.name, "data"))
        self.server.start()
        self.connect()
        self.eks.create_cluster(name="c1", roleArn=role("eks"), resourcesVpcConfig={})
        self.association = self.eks.create_pod_identity_association(
            clusterName="c1", namespace="prod", serviceAccount="app", roleArn=role("app")
        )["association"]

    def tearDown(self):
        self.server.kill()
        self.dir.cleanup()

    def connect(self):
        self.eks = self.server.client("eks")
        self.eks_auth = self.server.client("eks-auth")

    def pod_token(self, cluster="c1", namespace="prod", service_account="app", **extra):
        body = {"namespace": namespace, "serviceAccount": service_account, "podName": "app-7d9f"}
        body.update(extra)
        status, answer = self.server.admin(
            "POST", f"/admin/v1/clusters/{cluster}/service-account-token", body
        )
        self.assertEqual(status, 200, answer)
        return answer["token"]

    def assume(self, token, cluster="c1"):
        return self.eks_auth.assume_role_for_pod_identity(clusterName=cluster, token=token)

    def assert_error(self, code, token, cluster="c1", says=None):
        with self.assertRaises(self.eks_auth.exceptions.ClientError) as raised:
            self.assume(token, cluster)
        error = raised.exception.response["Error"]
        self.assertEqual(error["Code"], code, error)
        if says:
            self.assertIn(says, error["Message"])
        return error["Message"]

    def described(self, answer):
        key = answer["credentials"]["accessKeyId"]
        status, body = self.server.admin("GET", f"/admin/v1/credentials/{key}")
        self.assertEqual(status, 200, body)
        return body

    def set_association(self, **members):
        return self.eks.update_pod_identity_association(
            clusterName="c1", associationId=self.association["associationId"], **members
        )["association"]

    def test_credentials_and_arns_have_the_formats_sts_uses_and_carry_the_six_tags(self):
        answer = self.assume(self.pod_token())
        credentials = answer["credentials"]
        self.assertRegex(credentials["accessKeyId"], r"^ASIA[A-Z2-7]{16}$")
        self.assertEqual(len(credentials["secretAccessKey"]), 40)
        self.assertTrue(credentials["sessionToken"])
        remaining = credentials["expiration"].timestamp() - time.time()
        self.assertTrue(3500 < remaining < 3700, remaining)
        self.assertEqual(answer["subject"], {"namespace": "prod", "serviceAccount": "app"})
        self.assertEqual(answer["audience"], AUDIENCE)
        self.assertEqual(
            answer["podIdentityAssociation"],
            {
                "associationArn": self.association["associationArn"],
                "associationId": self.association["associationId"],
            },
        )
        arn = answer["assumedRoleUser"]["arn"]
        self.assertRegex(arn, rf"^arn:aws:sts::{ACCOUNT}:assumed-role/app/eks-c1-app-7d9f-[0-9a-f-]+$")
        session = arn.rsplit("/", 1)[1]
        self.assertLessEqual(len(session), 64)
        self.assertRegex(answer["assumedRoleUser"]["assumeRoleId"], rf"^AROA[A-Z2-7]{{17}}:{re.escape(session)}$")
        described = self.described(answer)
        self.assertEqual(
            [t["key"] for t in described["sessionTags"]],
            [
                "eks-cluster-arn",
                "eks-cluster-name",
                "kubernetes-namespace",
                "kubernetes-service-account",
                "kubernetes-pod-name",
                "kubernetes-pod-uid",
            ],
        )
        self.assertEqual(described["transitiveTagKeys"], [t["key"] for t in described["sessionTags"]])
        self.assertEqual(described["sessionTags"][0]["value"], f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/c1")

    def test_tags_off_with_a_policy_and_a_target_role_with_its_external_id(self):
        policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        self.set_association(disableSessionTags=True, policy=policy)
        described = self.described(self.assume(self.pod_token()))
        self.assertNotIn("sessionTags", described)
        self.assertNotIn("transitiveTagKeys", described)
        self.assertEqual(described["policy"], policy)

        target = "arn:aws:iam::999988887777:role/target"
        updated = self.set_association(targetRoleArn=target)
        answer = self.assume(self.pod_token())
        self.assertTrue(
            answer["assumedRoleUser"]["arn"].startswith("arn:aws:sts::999988887777:assumed-role/target/"),
            answer["assumedRoleUser"],
        )
        described = self.described(answer)
        self.assertEqual(described["roleArn"], target)
        self.assertEqual(described["sourceRoleArn"], role("app"))
        self.assertEqual(described["externalId"], updated["externalId"])

        self.set_association(targetRoleArn="", disableSessionTags=False, policy="")
        described = self.described(self.assume(self.pod_token()))
        self.assertEqual(described["roleArn"], role("app"))
        self.assertNotIn("sourceRoleArn", described)
        self.assertEqual(len(described["sessionTags"]), 6)

    def test_every_error_type(self):
        token = self.pod_token()
        self.assert_error("InvalidParameterException", "not-a-jwt", says="token")
        self.assert_error("InvalidParameterException", token, cluster="-bad", says="cluster name")
        self.assert_error("ResourceNotFoundException", token, cluster="ghost", says="ghost")
        self.assert_error(
            "ResourceNotFoundException", self.pod_token(service_account="worker"), says="worker"
        )
        self.eks.create_cluster(name="c2", roleArn=role("eks"), resourcesVpcConfig={})
        self.assert_error("InvalidTokenException", self.pod_token(cluster="c2"), says="issuer")
        self.assert_error(
            "InvalidTokenException", self.pod_token(audience="sts.amazonaws.com"), says=AUDIENCE
        )
        head, _, _ = token.rpartition(".")
        forged = head + "." + self.pod_token(cluster="c2").rpartition(".")[2]
        self.assert_error("InvalidTokenException", forged, says="signature")
        kind = ExternalIssuer("https://kind.example", "ES256")
        status, body = self.server.admin(
            "PUT", "/admin/v1/clusters/c1/service-account-issuer", {"issuer": kind.issuer, "jwks": kind.jwks}
        )
        self.assertEqual(status, 200, body)
        self.assert_error("ExpiredTokenException", kind.token("prod", "app", expires_in=-600))
        for status in ["CREATING", "DELETING", "FAILED"]:
            self.server.admin("PUT", "/admin/v1/clusters/c1/status", {"status": status})
            self.assert_error("InvalidRequestException", token, says=status)

    def test_an_external_issuers_rs256_and_es256_tokens_until_it_is_removed(self):
        for algorithm in ["RS256", "ES256"]:
            kind = ExternalIssuer(f"https://kind-{algorithm.lower()}.example", algorithm)
            token = kind.token("prod", "app")
            self.assert_error("InvalidTokenException", token, says=kind.issuer)
            status, body = self.server.admin(
                "PUT",
                "/admin/v1/clusters/c1/service-account-issuer",
                {"issuer": kind.issuer, "jwks": kind.jwks},
            )
            self.assertEqual(status, 200, body)
            answer = self.assume(token)
            self.assertEqual(self.described(answer)["podName"], "kind-pod")
            self.server.admin("DELETE", "/admin/v1/clusters/c1/service-account-issuer")
            self.assert_error("InvalidTokenException", token)

    def test_credentials_survive_a_sigkill_and_association_changes_are_seen_next_call(self):
        token = self.pod_token()
        answer = self.assume(token)
        before = self.described(answer)
        self.server.kill()
        self.server.start()
        self.connect()
        self.assertEqual(self.described(answer), before)

        self.set_association(roleArn=role("app-v2"))
        self.assertIn(":assumed-role/app-v2/", self.assume(token)["assumedRoleUser"]["arn"])
        self.eks.delete_pod_identity_association(
            clusterName="c1", associationId=self.association["associationId"]
        )
        self.assert_error("ResourceNotFoundException", token, says="prod")


if __name__ == "__main__":
    BIN = sys.argv.pop(1)
    unittest.main(verbosity=2)

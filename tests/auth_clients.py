"""boto3 and the AWS CLI against a server with SigV4 authentication and TLS.

Usage: python tests/auth_clients.py PATH/TO/pod-identity-store PATH/TO/aws

Starts the binary twice on 127.0.0.1 port 0 with a temporary data dir and a
generated credentials file (auth.mode = "sigv4"): once over plain HTTP, once
over HTTPS with a throwaway CA made with the openssl command. Checks that the
right key works for every operation, that each bad case (wrong secret,
unknown key, skewed clock, another region, a body changed after signing)
gets its AWS error type, status 403 and message, and changes nothing; and
that boto3 (verify=CA) and the CLI (--ca-bundle) reach the HTTPS server.
Every server is SIGKILLed at the end. Talks to 127.0.0.1 only.
"""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from unittest import mock

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError

REGION = "us-east-1"
ACCOUNT = "123456789012"
PLAIN = ("AKIDPLAINEXAMPLE0001", "plain/K7MDENG+bPxRfiCYEXAMPLEKEY0000001")
ADMIN = ("AKIDADMINEXAMPLE0001", "admin/K7MDENG+bPxRfiCYEXAMPLEKEY0000001")
STRANGER = ("AKIDSTRANGER00000001", "stranger/K7MDENG+bPxRfiCYEXAMPLEKEY00001")
MISMATCH = "The request signature we calculated does not match the signature you provided."
START_TIMEOUT = 30
READY = "pod-identity-store listening on "


class Server:
    """The binary serving a temporary store with `toml` as its config."""

    def __init__(self, binary, work, name, toml):
        data = work / f"data-{name}"
        config = work / f"{name}.toml"
        config.write_text(toml)
        self.log = open(work / f"{name}.log", "w")
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data-dir", str(data), "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("POD_IDENTITY_STORE_")},
        )
        line = self.process.stdout.readline()
        if not line.startswith(READY):
            self.kill()
            raise AssertionError(f"{name}: no ready line, got {line!r}; see {self.log.name}")
        self.base = line[len(READY):].strip()

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=START_TIMEOUT)
        self.log.close()


def client(base, key, region=REGION, verify=None):
    return boto3.client(
        "eks",
        region_name=region,
        endpoint_url=base,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        verify=verify,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def role(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def expect_error(call, error_type, message_start):
    """`call` must fail with `error_type`, status 403, and this message."""
    try:
        result = call()
    except ClientError as e:
        error = e.response["Error"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        got = (error.get("Code"), status)
        assert got == (error_type, 403), f"expected ({error_type}, 403), got {got}: {error}"
        message = error.get("Message", "")
        assert message.startswith(message_start), f"{error_type}: message {message!r}"
        return message
    raise AssertionError(f"expected {error_type}, the call succeeded: {result}")


def every_operation(eks):
    """Each operation of the API once, with the checks of its answer."""
    eks.create_cluster(name="c1", roleArn=role("eks-cluster-role"), resourcesVpcConfig={})
    assert eks.describe_cluster(name="c1")["cluster"]["name"] == "c1"
    assert eks.list_clusters()["clusters"] == ["c1"]
    created = eks.create_pod_identity_association(
        clusterName="c1", namespace="ns", serviceAccount="sa", roleArn=role("app"), tags={"team": "a"}
    )["association"]
    aid, arn = created["associationId"], created["associationArn"]
    described = eks.describe_pod_identity_association(clusterName="c1", associationId=aid)
    assert described["association"]["roleArn"] == role("app")
    updated = eks.update_pod_identity_association(clusterName="c1", associationId=aid, roleArn=role("app2"))
    assert updated["association"]["roleArn"] == role("app2")
    listed = eks.list_pod_identity_associations(clusterName="c1")["associations"]
    assert [a["associationId"] for a in listed] == [aid]
    # An ARN in the path (`:` and `/` percent-encoded), signed double-encoded.
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1"
    for resource in (arn, cluster_arn):
        eks.tag_resource(resourceArn=resource, tags={"k": "v"})
        assert eks.list_tags_for_resource(resourceArn=resource)["tags"]["k"] == "v"
        eks.untag_resource(resourceArn=resource, tagKeys=["k"])
        assert "k" not in eks.list_tags_for_resource(resourceArn=resource)["tags"]
    eks.delete_pod_identity_association(clusterName="c1", associationId=aid)
    eks.delete_cluster(name="c1")
    assert eks.list_clusters()["clusters"] == []


def write_credentials(path):
    path.write_text(
        "".join(
            f"[{profile}]\naws_access_key_id = {key[0]}\naws_secret_access_key = {key[1]}\n"
            for profile, key in (("plain", PLAIN), ("admin", ADMIN))
        )
    )
    path.chmod(0o600)


def make_certificates(work):
    """A CA and a server certificate for 127.0.0.1 and localhost it signed."""

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "key.pem", "server.csr", "cert.pem"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-subj", "/CN=auth-clients test CA", "-days", "1")
    openssl("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    extensions = work / "server.ext"
    extensions.write_text("basicConstraints = CA:FALSE\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "1", "-extfile", extensions)
    return ca, cert, key


def main():
    binary, aws = sys.argv[1], sys.argv[2]
    # Nothing of the host's AWS configuration may take part.
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        del os.environ[var]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

    passed = failed = 0
    servers = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        credentials = work / "credentials"
        write_credentials(credentials)
        auth = (
            f'[auth]\nmode = "sigv4"\ncredentials_file = "{credentials}"\n'
            f'admin_access_key_ids = ["{ADMIN[0]}"]\n'
        )

        def check(name, test):
            nonlocal passed, failed
            try:
                test()
                passed += 1
                print(f"ok: {name}")
            except Exception:
                failed += 1
                print(f"FAILED: {name}\n{traceback.format_exc()}", file=sys.stderr)

        try:
            http = Server(binary, work, "http", auth)
            servers.append(http)
            base = http.base

            check("boto3 with the right key runs every operation", lambda: every_operation(client(base, PLAIN)))

            def attempts_change_nothing():
                create = dict(name="intruder", roleArn=role("eks-cluster-role"), resourcesVpcConfig={})
                expect_error(lambda: client(base, STRANGER).create_cluster(**create),
                             "UnrecognizedClientException",
                             "The security token included in the request is invalid.")
                expect_error(lambda: client(base, (PLAIN[0], STRANGER[1])).create_cluster(**create),
                             "InvalidSignatureException", MISMATCH)
                expect_error(lambda: client(base, PLAIN, region="eu-west-1").create_cluster(**create),
                             "InvalidSignatureException", "Credential should be scoped to a valid region.")
                for minutes in (-10, 10):
                    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + \
                        datetime.timedelta(minutes=minutes)
                    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed):
                        expect_error(lambda: client(base, PLAIN).create_cluster(**create),
                                     "InvalidSignatureException", "Signature expired: ")

                # A body changed after it was signed (same length: Content-Length stays right).
                tampered = client(base, PLAIN)

                def swap_body(request, **_):
                    assert b'"good1"' in request.body, request.body
                    request.body = request.body.replace(b'"good1"', b'"evil1"')
                tampered.meta.events.register("before-send.eks.CreateCluster", swap_body)
                expect_error(lambda: tampered.create_cluster(name="good1", roleArn=role("r"), resourcesVpcConfig={}),
                             "InvalidSignatureException", MISMATCH)
                assert client(base, PLAIN).list_clusters()["clusters"] == [], "a refused call changed the store"
            check("bad keys, clocks, regions and bodies get their AWS errors and change nothing",
                  attempts_change_nothing)

            def cli():
                env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_PROFILE="plain",
                           AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
                run = lambda *args: subprocess.run([aws, "eks", *args, "--endpoint-url", base, "--output", "json"],
                                                   env=env, capture_output=True, text=True, timeout=60)
                created = run("create-cluster", "--name", "cli", "--role-arn", role("eks-cluster-role"),
                              "--resources-vpc-config", "{}")
                assert created.returncode == 0, created.stderr
                listed = run("list-clusters")
                assert json.loads(listed.stdout)["clusters"] == ["cli"], listed.stdout
                refused = subprocess.run([aws, "eks", "list-clusters", "--endpoint-url", base],
                                         env=dict({k: v for k, v in env.items() if k != "AWS_PROFILE"},
                                                  AWS_ACCESS_KEY_ID=STRANGER[0], AWS_SECRET_ACCESS_KEY=STRANGER[1]),
                                         capture_output=True, text=True, timeout=60)
                assert refused.returncode != 0 and "UnrecognizedClientException" in refused.stderr, refused.stderr
                unsigned = subprocess.run([aws, "eks", "list-clusters", "--endpoint-url", base, "--no-sign-request"],
                                          env=env, capture_output=True, text=True, timeout=60)
                assert "MissingAuthenticationTokenException" in unsigned.stderr, unsigned.stderr
            check("the AWS CLI signs with a profile of the server's own key file", cli)

            ca, cert, key = make_certificates(work)
            tls = f'[server.tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n'
            https = Server(binary, work, "https", tls + auth)
            servers.append(https)
            tls_base = https.base
            assert tls_base.startswith("https://"), tls_base

            check("boto3 over HTTPS with verify=CA runs every operation",
                  lambda: every_operation(client(tls_base, PLAIN, verify=str(ca))))

            def untrusted():
                try:
                    client(tls_base, PLAIN).list_clusters()
                except SSLError:
                    return
                raise AssertionError("a client without the CA accepted the server's certificate")
            check("boto3 without the CA refuses the server", untrusted)

            def cli_https():
                env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_PROFILE="plain",
                           AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
                listed = subprocess.run([aws, "eks", "list-clusters", "--endpoint-url", tls_base,
                                         "--ca-bundle", str(ca), "--output", "json"],
                                        env=env, capture_output=True, text=True, timeout=60)
                assert listed.returncode == 0, listed.stderr
                assert json.loads(listed.stdout)["clusters"] == [], listed.stdout
            check("the AWS CLI over HTTPS with --ca-bundle", cli_https)
        except Exception:
            failed += 1
            print(f"FAILED: setting up\n{traceback.format_exc()}", file=sys.stderr)
        finally:
            for server in servers:
                server.kill()
    print(f"auth_clients: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

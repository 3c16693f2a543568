#!/usr/bin/env bash
# AWS CLI smoke test: a short scripted session of the real AWS CLI against a
# freshly started pod-identity-store, compared with what EKS answers.
#
# Usage: tests/cli-smoke.sh PATH/TO/pod-identity-store [PATH/TO/aws]
#
# Starts the binary on 127.0.0.1 port 0 with a temporary data dir, runs
# create cluster, create / update / describe / list / delete an association,
# one expected error (exit code and error type), and one call pointed at the
# server through AWS_ENDPOINT_URL_EKS instead of --endpoint-url. Any
# difference fails the script with what was expected and what came; the
# server is SIGKILLed on every exit. Talks to 127.0.0.1 only.
set -euo pipefail

bin=${1:?usage: tests/cli-smoke.sh PATH/TO/pod-identity-store [PATH/TO/aws]}
aws=${2:-aws}
# Every aws call and the start-up are bounded (seconds).
call_timeout=60
start_timeout=30

work=$(mktemp -d)
server_pid=
passed=0

cleanup() {
    local status=$?
    if [[ -n $server_pid ]]; then
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -f $work/server.log ]]; then
        echo "--- server stderr (last 40 lines)" >&2
        tail -n 40 "$work/server.log" >&2 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
# A signal ends the script through the EXIT trap too.
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "cli-smoke: FAILED: $*" >&2
    echo "cli-smoke: $passed passed, 1 failed" >&2
    exit 1
}

# expect WHAT ACTUAL EXPECTED
expect() {
    if [[ $2 != "$3" ]]; then
        fail "$1: expected [$3], got [$2]"
    fi
    passed=$((passed + 1))
    echo "ok: $1"
}

# json_check WHAT FILE PYTHON-EXPRESSION: the expression (over `d`, the
# file's JSON) must be true.
json_check() {
    python3 - "$2" "$3" <<'EOF' || fail "$1: $3 does not hold for $(cat "$2")"
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
# Parenthesised, so that the expression may span lines.
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
EOF
    passed=$((passed + 1))
    echo "ok: $1"
}

# --- the AWS CLI, isolated from the host's AWS configuration ----------------
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
    AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EKS AWS_CA_BUNDLE AWS_ROLE_ARN \
    AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_FULL_URI \
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" AWS_MAX_ATTEMPTS=1
# No proxy may take the loopback traffic elsewhere.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

version=$("$aws" --version 2>&1) || fail "$aws --version: $version"
echo "cli-smoke: $version"
# The CLI's exit code for an error the service answered: 255 in v1, 254 in v2.
case $version in
    aws-cli/1.*) service_error_exit=255 ;;
    aws-cli/2.*) service_error_exit=254 ;;
    *) fail "unknown AWS CLI version: $version" ;;
esac

# --- the server --------------------------------------------------------------
"$bin" --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/stdout" 2>"$work/server.log" </dev/null &
server_pid=$!
port=
for _ in $(seq $((start_timeout * 10))); do
    port=$(sed -n 's#^pod-identity-store listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$#\1#p' "$work/stdout")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited before it was ready"
    sleep 0.1
done
[[ -n $port ]] || fail "the server printed no ready line within ${start_timeout}s: $(cat "$work/stdout")"
endpoint=http://127.0.0.1:$port
echo "cli-smoke: server at $endpoint"

eks() {
    timeout "$call_timeout" "$aws" eks --endpoint-url "$endpoint" "$@"
}

account=123456789012
role=arn:aws:iam::$account:role

# --- the session ---------------------------------------------------------------
eks create-cluster --name dev --role-arn "$role/eks-cluster" \
    --resources-vpc-config subnetIds=subnet-1 >"$work/cluster.json"
json_check "create-cluster answers CREATING" "$work/cluster.json" \
    "d['cluster']['status'] == 'CREATING' and d['cluster']['arn'] == 'arn:aws:eks:us-east-1:$account:cluster/dev'"
expect "describe-cluster answers ACTIVE" \
    "$(eks describe-cluster --name dev --query cluster.status --output text)" ACTIVE

eks create-pod-identity-association --cluster-name dev --namespace default \
    --service-account app --role-arn "$role/app-v1" --tags team=platform >"$work/created.json"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["association"]["associationId"])' "$work/created.json")
[[ $id =~ ^a-[a-z0-9]{17}$ ]] || fail "associationId $id is not a- and 17 lowercase letters or digits"
json_check "create-pod-identity-association answers the association" "$work/created.json" \
    "(a := d['association']) == {'clusterName': 'dev', 'namespace': 'default', 'serviceAccount': 'app',
      'roleArn': '$role/app-v1', 'associationId': '$id',
      'associationArn': 'arn:aws:eks:us-east-1:$account:podidentityassociation/dev/$id',
      'tags': {'team': 'platform'}, 'createdAt': a['createdAt'], 'modifiedAt': a['createdAt'],
      'disableSessionTags': False}"

eks update-pod-identity-association --cluster-name dev --association-id "$id" \
    --role-arn "$role/app-v2" --disable-session-tags \
    --target-role-arn arn:aws:iam::111122223333:role/target >"$work/updated.json"
json_check "update-pod-identity-association answers the updated association" "$work/updated.json" \
    "(a := d['association'])['roleArn'] == '$role/app-v2' and a['disableSessionTags'] is True
     and a['targetRoleArn'] == 'arn:aws:iam::111122223333:role/target' and len(a['externalId']) == 36
     and a['modifiedAt'] > a['createdAt'] and a['tags'] == {'team': 'platform'}"

eks describe-pod-identity-association --cluster-name dev --association-id "$id" >"$work/described.json"
expect "describe-pod-identity-association answers what update answered" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))' \
        "$work/described.json" "$work/updated.json")" True

expect "list-pod-identity-associations lists it" \
    "$(eks list-pod-identity-associations --cluster-name dev --query 'associations[].[associationId,namespace,serviceAccount]' --output text)" \
    "$id	default	app"
expect "list-pod-identity-associations filters by namespace" \
    "$(eks list-pod-identity-associations --cluster-name dev --namespace other --query 'length(associations)' --output text)" \
    0

# The expected error: a second association for the same service account.
set +e
eks create-pod-identity-association --cluster-name dev --namespace default \
    --service-account app --role-arn "$role/app-v3" >"$work/dup.out" 2>"$work/dup.err"
code=$?
set -e
expect "a duplicate association exits with the CLI's service-error code" "$code" "$service_error_exit"
expect "the duplicate's error type and message" "$(sed '/^$/d' "$work/dup.err")" \
    "An error occurred (ResourceInUseException) when calling the CreatePodIdentityAssociation operation: Association already exists: $id"
expect "a refused call prints nothing on stdout" "$(cat "$work/dup.out")" ""

expect "delete-pod-identity-association answers the deleted association" \
    "$(eks delete-pod-identity-association --cluster-name dev --association-id "$id" \
        --query '[association.associationId,association.roleArn]' --output text)" \
    "$id	$role/app-v2"
expect "the list is empty after the delete" \
    "$(eks list-pod-identity-associations --cluster-name dev --query 'length(associations)' --output text)" \
    0

# The service-specific endpoint variable instead of --endpoint-url.
expect "AWS_ENDPOINT_URL_EKS points the CLI at the server" \
    "$(AWS_ENDPOINT_URL_EKS=$endpoint timeout "$call_timeout" "$aws" eks list-clusters --query clusters --output text)" \
    dev

echo "cli-smoke: $passed passed, 0 failed"

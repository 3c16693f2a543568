#!/usr/bin/env python3
"""Seeds a running server for the wrk scripts: cluster `hot` with N
associations, and writes their IDs as a Lua table to OUT.

    seed.py BASE_URL N OUT      e.g. seed.py http://127.0.0.1:18080 1024 ids.lua
"""

import concurrent.futures
import json
import sys
import urllib.request

ROLE = "arn:aws:iam::123456789012:role/load"


def post(base, path, body):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def main():
    base, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    post(base, "/clusters", {"name": "hot", "roleArn": ROLE, "resourcesVpcConfig": {}})

    def create(i):
        body = {"namespace": "load", "serviceAccount": f"sa-{i}", "roleArn": ROLE + "0"}
        answer = post(base, "/clusters/hot/pod-identity-associations", body)
        return answer["association"]["associationId"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(create, range(count)))
    with open(out, "w", encoding="utf-8") as f:
        f.write("ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n")


if __name__ == "__main__":
    main()

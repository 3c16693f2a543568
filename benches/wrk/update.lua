-- UpdatePodIdentityAssociation of random seeded associations, durable, each
-- with a fresh clientRequestToken (as the AWS SDKs send) and a roleArn no
-- association holds yet, so that every update writes.
dofile(os.getenv("WRK_DIR") .. "/common.lua")

local n = 0

request = function()
  n = n + 1
  local body = string.format(
    '{"roleArn":"arn:aws:iam::123456789012:role/load-%d-%d-%d","clientRequestToken":"wrk-%d-%d-%d"}',
    tid, n, math.random(1000000000), tid, n, math.random(1000000000))
  return wrk.format("POST", "/clusters/hot/pod-identity-associations/" .. ids[math.random(#ids)],
    { ["Content-Type"] = "application/json" }, body)
end

-- DescribePodIdentityAssociation of random seeded associations.
dofile(os.getenv("WRK_DIR") .. "/common.lua")

request = function()
  return wrk.format("GET", "/clusters/hot/pod-identity-associations/" .. ids[math.random(#ids)])
end

-- PowerDNS lua2 backend (API v2): zone example.test. with the data the router serves
-- with configs/router.yaml and one healthy edge on 127.0.0.1: SOA, NS ns1 (+ glue),
-- ns1 A, www A (TTL 5, as the router's answers.ttl). Other names: NXDOMAIN.
local apex = "example.test."
local soa = "ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 30"
local a = {
  ["ns1.example.test."] = { "127.0.0.1", 3600 },
  ["www.example.test."] = { "127.0.0.1", 5 },
}

function dns_lookup(qtype, qname, domain_id, ctx)
  local name = tostring(qname):lower()
  local t = qtype:getName()
  local out = {}
  if name == apex then
    if t == "SOA" or t == "ANY" then
      out[#out + 1] = { name = qname, type = newQType("SOA"), content = soa, ttl = 3600, domain_id = 1 }
    end
    if t == "NS" or t == "ANY" then
      out[#out + 1] = { name = qname, type = newQType("NS"), content = "ns1.example.test.", ttl = 3600, domain_id = 1 }
    end
    return out
  end
  local rec = a[name]
  if rec ~= nil and (t == "A" or t == "ANY") then
    out[#out + 1] = { name = qname, type = newQType("A"), content = rec[1], ttl = rec[2], domain_id = 1 }
  end
  return out
end

function dns_get_domaininfo(dom)
  if tostring(dom):lower() == apex then
    return { id = 1, serial = 2024010101 }
  end
  return false
end

-- pdns 4.5+ fills its zone cache from this at start.
function dns_get_all_domains()
  local domains = {}
  domains[newDN(apex)] = { id = 1, serial = 2024010101 }
  return domains
end

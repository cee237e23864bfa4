vcl 4.1;
# Varnish edge (adapted from the team harness): builtin VCL caching (honours
# Cache-Control max-age; request coalescing is built in), malloc storage and default
# thread pools, set on the varnishd command line by bench.perf.
backend origin {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
}
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

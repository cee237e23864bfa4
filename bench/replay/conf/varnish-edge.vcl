vcl 4.1;
import std;
# Varnish edge of the two-tier CDN the replay compares with: misses go to the mid tier
# that the shard director picks by URL (consistent hashing, as nginx's `hash
# $request_uri consistent` and our edges do). Builtin VCL otherwise: Cache-Control
# max-age sets the TTL and request coalescing is built in.
import directors;
@BACKENDS@
sub vcl_init {
    new mids = directors.shard();
@ADD_BACKENDS@
    mids.reconfigure();
}
sub vcl_backend_fetch {
    set bereq.backend = mids.backend(by=URL);
}
@SUBS@

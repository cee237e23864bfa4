vcl 4.1;
import std;
# Varnish mid tier of the two-tier CDN the replay compares with: misses go to the origin.
backend origin {
    .host = "@ORIGIN_HOST@";
    .port = "@ORIGIN_PORT@";
}
@SUBS@

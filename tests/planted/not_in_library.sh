#!/bin/sh
# not_in_library.sh LIBTERN.a LIBTERN.so LIBTERN_PLANTED.a
# The libraries users get must not carry the planted bugs of
# src/core/plant.h: the name of their switch (the environment variable
# TERN_PLANT_BUG) is in the planted build only.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 libtern.a libtern.so libtern_planted.a" >&2; exit 2; }
status=0
for lib in "$1" "$2"; do
    if grep -q -a TERN_PLANT_BUG "$lib"; then
        echo "FAIL: $lib carries the planted bugs (TERN_PLANT_BUG found)"
        status=1
    fi
done
if ! grep -q -a TERN_PLANT_BUG "$3"; then
    echo "FAIL: the planted build $3 has no TERN_PLANT_BUG: this check sees nothing"
    status=1
fi
[ $status -eq 0 ] && echo "ok: no planted bug in the libraries users get"
exit $status

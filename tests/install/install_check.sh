#!/bin/sh
# `cmake --install` puts a usable library where pkg-config finds it: install
# into a scratch prefix, then build and run a program against it the way a
# user would, with nothing from the source tree.
set -eu
build="$1"
tmp="$2/install-check.$$"
extra="${3:-}" # the sanitizer flags the library was built with, if any
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n1)
export PKG_CONFIG_PATH="$libdir"
for f in include/tern/tern.h include/tern/socket.h include/tern/link.h include/tern/stack.h; do
    [ -f "$tmp/prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
cat > "$tmp/user.c" <<'C'
#include <stdio.h>
#include <tern/tern.h>
int main(void)
{
    struct tern_stack *s = tern_stack_new(NULL);
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    int ok = s && fd >= 0 && tern_close(s, fd) == 0;
    tern_stack_free(s);
    printf("%s\n", ok ? "linked and ran" : "failed");
    return !ok;
}
C
for kind in static shared; do
    if [ "$kind" = static ]; then
        cc -std=c11 -Wall -Werror $extra $(pkg-config --cflags tern) "$tmp/user.c" \
            "$(pkg-config --variable=libdir tern)/libtern.a" -o "$tmp/user-$kind"
    else
        cc -std=c11 -Wall -Werror $extra $(pkg-config --cflags tern) "$tmp/user.c" \
            $(pkg-config --libs tern) -Wl,-rpath,"$(pkg-config --variable=libdir tern)" \
            -o "$tmp/user-$kind"
    fi
    out=$("$tmp/user-$kind")
    [ "$out" = "linked and ran" ] || { echo "FAIL: $kind program said '$out'"; exit 1; }
    echo "PASS: a program built from the installed headers against libtern ($kind) runs"
done
# The shared library exports the API and nothing internal.
nm -D --defined-only "$(pkg-config --variable=libdir tern)/libtern.so" | awk '{print $3}' >"$tmp/syms"
grep -q '^tern_socket$' "$tmp/syms" || { echo "FAIL: tern_socket not exported"; exit 1; }
if grep -qE '^tern_(pkt|sock|pcb|arp|ipv4|wheel|timer)_' "$tmp/syms"; then
    echo "FAIL: internal symbols exported:"; grep -E '^tern_(pkt|sock|pcb|arp|ipv4|wheel|timer)_' "$tmp/syms" | head
    exit 1
fi
echo "PASS: libtern.so exports $(wc -l <"$tmp/syms") public symbols, no internal ones"

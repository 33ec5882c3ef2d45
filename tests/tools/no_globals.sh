#!/bin/sh
# DESIGN.md rule 1: no writable globals in the library. Fails on any
# symbol nm places in .data/.bss (or their small and common variants).
# Compiler-generated names (leading "__" or ".") are skipped, as they are
# sanitizer and profiler bookkeeping, not state of ours.
lib="$1"
[ -f "$lib" ] || { echo "no library at '$lib'"; exit 2; }
bad=$(nm --defined-only "$lib" | awk '$2 ~ /^[BbDdGgSsCV]$/ {print $3}' | grep -vE '^(__|\.)' | sort -u)
if [ -n "$bad" ]; then
    echo "writable globals in $lib:"
    echo "$bad"
    exit 1
fi
n=$(nm --defined-only "$lib" | awk '$2 ~ /^[Tt]$/' | wc -l)
[ "$n" -gt 0 ] || { echo "no code symbols in $lib: nothing was checked"; exit 1; }
echo "no writable globals in $lib ($n functions checked)"

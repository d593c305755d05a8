#!/bin/sh
# Standalone jobs chained with `rnx job run --requires`, like Slurm's
# --dependency: each waits PENDING until the job it names has ended as asked.
# Usage: requires-chain.sh [RNX]   (default: rnx)
set -eu
RNX=${1:-rnx}
id_of() { sed -n 's/^ID: *//p'; }
first=$($RNX job run sh -c 'echo first' | id_of)
second=$($RNX job run --requires "$first=COMPLETED" sh -c 'echo second' | id_of)
# An expression: runs whether second COMPLETED or FAILED.
third=$($RNX job run --requires "$second IN (COMPLETED, FAILED)" sh -c 'echo third' | id_of)
echo "$first $second $third"

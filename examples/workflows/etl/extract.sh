#!/bin/sh
# Writes the raw data the transforms read; the password arrives as a secret.
set -e
[ -n "$DB_PASSWORD" ] || { echo "no password" >&2; exit 1; }
printf 'a\nb\nab\n' > /volumes/etl-data/raw
echo "extracted 3 rows for $STAGE"

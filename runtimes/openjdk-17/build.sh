#!/bin/sh
# Debian's OpenJDK 17 (openjdk-17-jdk-headless) as a runtime, links resolved.
#
# It runs in the build sandbox and writes $DEST (/opt/runtime), the path jobs see
# it at. Debian links the JDK's configuration into /etc/java-17-openjdk and its
# CA store into /etc/ssl/certs/java: the copy takes the files themselves, so a
# job needs nothing of the host's /etc for Java.
set -eu
DEST=${DEST:-/opt/runtime}
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "build: no OpenJDK 17 build for $(uname -m)" >&2; exit 1 ;;
esac
JDK=${JDK:-/usr/lib/jvm/java-17-openjdk-$arch}
[ -x "$JDK/bin/javac" ] || { echo "build: $JDK/bin/javac is missing (openjdk-17-jdk-headless)" >&2; exit 1; }

# every link must resolve here, or the copy would miss a file the JDK needs
# (docs, man pages and the sources' src.zip, from other packages, are left out)
missing=$(find "$JDK" \( -path "$JDK/docs" -o -path "$JDK/man" -o -path "$JDK/lib/src.zip" \) -prune \
  -o -type l ! -exec test -e {} \; -print | head -n 3)
if [ -n "$missing" ]; then
  echo "build: links of the JDK lead to files this build cannot see:" >&2
  echo "$missing" >&2
  echo "build: filesystem.allowedMounts must hold /etc/java-17-openjdk and /etc/ssl/certs" >&2
  exit 1
fi

echo "copying $JDK to $DEST/jdk"
mkdir -p "$DEST/jdk"
(cd "$JDK" && tar -ch --exclude=./docs --exclude=./man --exclude=./lib/src.zip .) | (cd "$DEST/jdk" && tar -x)

"$DEST/jdk/bin/java" -version
sed -n 's/^JAVA_VERSION="\(.*\)"$/openjdk==\1/p' "$DEST/jdk/release" > "$DEST/.packages"

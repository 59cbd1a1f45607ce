#!/usr/bin/env bash
# Fetch and build mongo-java-server (an in-memory MongoDB wire-protocol server) for
# the pack-stream Python-interop tests.
#
#   scripts/mongo-java-server.sh      # build if needed; last stdout line = command prefix
#   $(scripts/mongo-java-server.sh | tail -n1) 27018
#                                     # -> prints "listening 127.0.0.1:27018" when ready
#
# Why a second server: FerretDB v1.24 (scripts/ferretdb.sh) cannot store an array
# directly inside an array, which every bluesky start document with
# hints.dimensions has, so suitcase-mongo cannot write ordinary runs into it.
#
# The jars come from Maven Central (scripts/mongo-java-server/pom.xml, via
# `mvn dependency:copy-dependencies`), and scripts/mongo-java-server/Launcher.java
# is compiled against them. Everything lives under
# ${PACK_STREAM_CACHE:-$HOME/.cache/pack-stream}/mongo-java-server/: the Maven
# repository (m2/) and a build directory named by the sha256 of pom.xml +
# Launcher.java, so editing either triggers a rebuild (older builds are removed)
# and an unchanged pair reuses the cache. JVM options: set JAVA_TOOL_OPTIONS.
# Progress goes to stderr. Needs Java >= 17 (java, javac) and Maven.
# The printed command assumes the cache path contains no whitespace.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$here/mongo-java-server
cache_dir=${PACK_STREAM_CACHE:-$HOME/.cache/pack-stream}/mongo-java-server

log() { printf 'mongo-java-server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in java javac mvn sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done
java_bin=$(command -v java)
java_major=$("$java_bin" -XshowSettings:properties -version 2>&1 |
	sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
[[ -n $java_major && $java_major -ge 17 ]] ||
	die "Java >= 17 needed (mongo-java-server 1.47 is built for 17), found '${java_major:-?}'"

key=$(cat "$src_dir/pom.xml" "$src_dir/Launcher.java" | sha256sum | cut -c1-16)
build=$cache_dir/$key

print_command() {
	local cp=$build/classes jar
	for jar in "$build"/lib/*.jar; do cp+=:$jar; done
	printf '%s -cp %s Launcher\n' "$java_bin" "$cp"
}

if [[ -f $build/classes/Launcher.class ]]; then
	log "using cached build $build"
	print_command
	exit 0
fi

mkdir -p "$cache_dir"
tmp=$(mktemp -d "$cache_dir/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
log "downloading jars with Maven ($(mvn -v 2>/dev/null | head -n1 | sed 's/\x1b\[[0-9;]*m//g'))"
# Run on a copy so Maven writes nothing next to the pom in the source tree.
cp "$src_dir/pom.xml" "$tmp/pom.xml"
# Maven 3.8 still emits bare colour resets with -q -B; strip them.
(cd "$tmp" && mvn -q -B -Dstyle.color=never \
	-Dmaven.repo.local="$cache_dir/m2" \
	dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$tmp/out/lib" 2>&1) |
	sed -u 's/\x1b\[[0-9;]*m//g; /^$/d' >&2 ||
	die "mvn dependency:copy-dependencies failed"
compgen -G "$tmp/out/lib/mongo-java-server-core-*.jar" >/dev/null ||
	die "mvn did not produce mongo-java-server-core jar"

log "compiling Launcher.java"
javac --release 17 -d "$tmp/out/classes" -cp "$tmp/out/lib/*" "$src_dir/Launcher.java" >&2 ||
	die "javac failed"

# Rename into place last, so an interrupted build is never mistaken for a cached one.
[[ -f $build/classes/Launcher.class ]] || rm -rf "$build"
if ! mv -T "$tmp/out" "$build" 2>/dev/null; then
	[[ -f $build/classes/Launcher.class ]] || die "could not move build to $build"
	log "another run finished the same build first; using it"
fi
log "built in $(($(date +%s) - start))s: $build"
# Drop builds of older pom/Launcher versions (m2/ stays, so rebuilds are quick).
for old in "$cache_dir"/*; do
	name=${old##*/}
	if [[ $name =~ ^[0-9a-f]{16}$ && $name != "$key" ]]; then rm -rf "$old"; fi
done
print_command

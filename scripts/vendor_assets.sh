#!/usr/bin/env bash
# Re-vendor the browser assets behind GraphiQL (server/static/graphiql/) and Swagger UI
# (compat_rest/static/swagger/).
#
# Observatory networks are often offline, so these pages must never load from a CDN: the
# minified files are committed and this script is NOT run by the build. Run it by hand
# to change a pinned version below, then review the diff and commit.
#
# Each package is fetched with `npm pack` (npm checks the tarball against the registry's
# integrity hash) into a temporary directory and only the files the pages need are
# copied, with the package's licence text. VERSIONS.txt records name, version, licence
# and npm integrity; SHA256SUMS lets `sha256sum -c` (and the test suite) detect a
# truncated or hand-edited asset.
set -euo pipefail

GRAPHIQL_VERSION=3.9.0        # last 3.x: ships a UMD build (graphiql.min.js); 4.x+ is ESM only
REACT_VERSION=18.3.1          # last 18.x: React 19 ships no UMD builds
GRAPHQL_WS_VERSION=6.0.8      # graphql-transport-ws client, UMD global `graphqlWs`
SWAGGER_UI_VERSION=5.32.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
graphiql_dir="$repo_root/server/static/graphiql"
swagger_dir="$repo_root/compat_rest/static/swagger"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unpack NAME VERSION: fetch NAME@VERSION and extract it to $work/NAME.
unpack() {
    local name=$1 version=$2 tarball
    tarball=$(cd "$work" && npm pack --silent "$name@$version")
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
}

# record DEST NAME VERSION: append one VERSIONS.txt line for an unpacked package.
record() {
    local dest=$1 name=$2 version=$3 license integrity
    license=$(node -p "require('$work/$name/package.json').license")
    integrity=$(npm view "$name@$version" dist.integrity)
    printf '%s\t%s\t%s\t%s\n' "$name" "$version" "$license" "$integrity" >>"$dest/VERSIONS.txt"
}

# vendor DEST NAME VERSION LICENSE_FILE FILE...: copy FILEs (paths inside the package)
# flat into DEST and the licence text to DEST/licenses/NAME.txt.
vendor() {
    local dest=$1 name=$2 version=$3 license_file=$4
    shift 4
    unpack "$name" "$version"
    for file in "$@"; do
        cp "$work/$name/$file" "$dest/"
    done
    cp "$work/$name/$license_file" "$dest/licenses/$name.txt"
    record "$dest" "$name" "$version"
}

# start DEST FILE...: remove the previously vendored files (our own page scripts stay).
start() {
    local dest=$1
    shift
    mkdir -p "$dest"
    (cd "$dest" && rm -rf -- licenses VERSIONS.txt SHA256SUMS "$@")
    mkdir -p "$dest/licenses"
    printf '# name\tversion\tlicense\tnpm integrity\n' >"$dest/VERSIONS.txt"
}

# finish DEST: checksum every vendored file (not our own dsa110-*.js).
finish() {
    local dest=$1
    (cd "$dest" && find . -type f ! -name 'dsa110-*' ! -name SHA256SUMS -printf '%P\n' \
        | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
}

graphiql_files=(graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js
    graphql-ws.min.js)
start "$graphiql_dir" "${graphiql_files[@]}"
vendor "$graphiql_dir" graphiql "$GRAPHIQL_VERSION" LICENSE graphiql.min.js graphiql.min.css
vendor "$graphiql_dir" react "$REACT_VERSION" LICENSE umd/react.production.min.js
vendor "$graphiql_dir" react-dom "$REACT_VERSION" LICENSE umd/react-dom.production.min.js
vendor "$graphiql_dir" graphql-ws "$GRAPHQL_WS_VERSION" LICENSE.md umd/graphql-ws.min.js
finish "$graphiql_dir"

swagger_files=(swagger-ui.css swagger-ui-bundle.js)
start "$swagger_dir" "${swagger_files[@]}"
vendor "$swagger_dir" swagger-ui-dist "$SWAGGER_UI_VERSION" LICENSE "${swagger_files[@]}"
# The bundle's third-party notices and Apache-2.0 NOTICE travel with it.
cp "$work/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$swagger_dir/licenses/swagger-ui-bundle.js.LICENSE.txt"
cp "$work/swagger-ui-dist/NOTICE" "$swagger_dir/licenses/swagger-ui-dist.NOTICE.txt"
finish "$swagger_dir"

du -sh "$graphiql_dir" "$swagger_dir"

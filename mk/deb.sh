#!/bin/sh
# Build notebookd's Debian package (make deb): dpkg-buildpackage from debian/ in a copy
# of the tree, so the working tree gets none of debhelper's files (debian/notebookd/,
# debian/.debhelper/, debian/files), then the .deb in the output directory.
#
# Environment:
#   NB_DEB_OUT       where the .deb goes (default build/deb)
#   NB_DEB_VERSION   a new version: the copy's changelog gets an entry for it (dch), so
#                    the package and `notebookd --version` say it (tests/system/run.sh
#                    builds the package it upgrades to this way)
#   NB_DEB_LINTIAN=1 run lintian on the .deb and fail on any error or warning
#   SANITIZE=1       an ASan+UBSan build (the system test's SANITIZE=1 run; never shipped)
# Prints the path of the .deb last.
set -eu
cd "$(dirname "$0")/.."
OUT=${NB_DEB_OUT:-build/deb}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
work=$OUT/src
rm -rf "$work"
mkdir -p "$work/notebookd"
# The tree as it is (uncommitted changes included), without builds or Git's database.
tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C "$work/notebookd"

if [ -n "${NB_DEB_VERSION:-}" ]; then
    maint=$(sed -n 's/^Maintainer: *//p' debian/control)
    (cd "$work/notebookd" &&
        DEBFULLNAME=${maint% <*} DEBEMAIL=$(echo "$maint" | sed 's/.*<\(.*\)>.*/\1/') \
            dch --newversion "$NB_DEB_VERSION" --distribution unstable --force-distribution \
            "Rebuilt as $NB_DEB_VERSION." >/dev/null 2>&1) ||
        { echo "deb: dch --newversion $NB_DEB_VERSION failed" >&2; exit 1; }
fi

# Two cores unless DEB_BUILD_OPTIONS says otherwise; -b: binary packages only.
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}"
(cd "$work/notebookd" && dpkg-buildpackage -b -us -uc) >"$OUT/build.log" 2>&1 ||
    { tail -n 30 "$OUT/build.log" >&2; echo "deb: dpkg-buildpackage failed (log: $OUT/build.log)" >&2; exit 1; }

version=$(cd "$work/notebookd" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=notebookd_${version}_${arch}.deb
mv "$work/$deb" "$OUT/"
# The debug symbols (notebookd-dbgsym), when dh_strip made them, beside it.
for f in "$work"/notebookd-dbgsym_"${version}"_*.*deb; do
    [ -e "$f" ] && mv "$f" "$OUT/"
done
rm -rf "$work"

if [ "${NB_DEB_LINTIAN:-0}" = 1 ]; then
    # --fail-on: errors and warnings fail; info and pedantic tags are only shown.
    lintian --fail-on error,warning --info "$OUT/$deb" >"$OUT/lintian.txt" 2>&1 ||
        { cat "$OUT/lintian.txt" >&2; echo "deb: lintian found errors or warnings in $OUT/$deb" >&2; exit 1; }
    cat "$OUT/lintian.txt"
    echo "deb: lintian: no errors, no warnings"
fi
echo "$OUT/$deb"

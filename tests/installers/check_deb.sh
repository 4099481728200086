#!/usr/bin/env bash
# Build the Debian package with CPack from a configured, built tree and check
# it: control fields, dependency names, contents, RUNPATHs, and that the
# packaged binaries resolve all their shared libraries.
#
#   check_deb.sh --build-dir DIR [--cpack CPACK] [--package NAME]
#                [--version X.Y.Z] [--module-dir lib/ltlab]
#                [--app-id ID] [--depends "pkg pkg ..."]
#                [--recommends "pkg ..."] [--libs "ltlab_core ltlab_ui"]
#                [--keep]
#
# Exit status 0 when every check passes, 1 on the first failed group of
# checks (all failures of that group are listed), 2 on bad usage.
set -u -o pipefail

build_dir=""
cpack="cpack"
package="ltlab"
version=""
module_dir="lib/ltlab"
app_id="io.github.ltlab.Ltlab"
depends=""
recommends=""
libs="ltlab_core"
keep=0

usage() { sed -n '2,14p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir)  build_dir=${2:?}; shift 2 ;;
    --cpack)      cpack=${2:?}; shift 2 ;;
    --package)    package=${2:?}; shift 2 ;;
    --version)    version=${2-}; shift 2 ;;
    --module-dir) module_dir=${2:?}; shift 2 ;;
    --app-id)     app_id=${2:?}; shift 2 ;;
    --depends)    depends=${2-}; shift 2 ;;
    --recommends) recommends=${2-}; shift 2 ;;
    --libs)       libs=${2-}; shift 2 ;;
    --keep)       keep=1; shift ;;
    -h|--help)    usage ;;
    *) echo "check_deb.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -n "$build_dir" ] || usage

fail() { echo "check_deb.sh: FAIL: $*" >&2; exit 1; }
note() { echo "check_deb.sh: $*"; }

for tool in "$cpack" dpkg-deb dpkg readelf ldd; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "'$tool' not found (cpack: cmake; dpkg-deb/dpkg: dpkg; readelf: binutils; ldd: libc-bin)"
done
[ -f "$build_dir/CPackConfig.cmake" ] ||
  fail "$build_dir/CPackConfig.cmake missing: configure the project first (installers/ includes CPack)"
[ -x "$build_dir/bin/ltlab" ] ||
  fail "$build_dir/bin/ltlab missing: build the project before packaging"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ltlab-deb-check.XXXXXX") || fail "mktemp failed"
cleanup() {
  local rc=$?
  if [ "$keep" = 1 ] || [ $rc -ne 0 ]; then
    echo "check_deb.sh: work folder kept: $tmp" >&2
  else
    rm -rf -- "$tmp"
  fi
  exit $rc
}
trap cleanup EXIT

# --- build the package --------------------------------------------------------
note "cpack -G DEB -B $tmp/out (in $build_dir)"
if ! (cd "$build_dir" && "$cpack" -G DEB -B "$tmp/out" --config "$build_dir/CPackConfig.cmake") \
     >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log" >&2
  fail "cpack -G DEB failed"
fi
shopt -s nullglob
debs=("$tmp"/out/*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 1 ] || { cat "$tmp/cpack.log" >&2; fail "expected one .deb in $tmp/out, found ${#debs[@]}"; }
deb=${debs[0]}
note "package: $(basename "$deb")"

dpkg-deb -I "$deb" >"$tmp/info.txt" 2>&1 || { cat "$tmp/info.txt" >&2; fail "dpkg-deb -I cannot read the package"; }
dpkg-deb -c "$deb" >"$tmp/contents.txt" 2>&1 || { cat "$tmp/contents.txt" >&2; fail "dpkg-deb -c cannot list the package"; }
cat "$tmp/info.txt"

field() { dpkg-deb -f "$deb" "$1" 2>/dev/null; }
# Package names of a relationship field: drop versions and architecture
# qualifiers, split alternatives.
names() { sed 's/[,|]/\n/g' | sed -e 's/(.*)//' -e 's/\[.*\]//' -e 's/:[a-z0-9]*//' -e 's/[[:space:]]//g' | sed '/^$/d'; }

# --- control fields -------------------------------------------------------------
errors=()
[ "$(field Package)" = "$package" ] || errors+=("Package is '$(field Package)', expected '$package'")
if [ -n "$version" ]; then
  case "$(field Version)" in
    "$version"|"$version"-*) ;;
    *) errors+=("Version is '$(field Version)', expected '$version' or '$version-<release>'") ;;
  esac
fi
arch=$(dpkg --print-architecture)
[ "$(field Architecture)" = "$arch" ] || errors+=("Architecture is '$(field Architecture)', expected '$arch'")
[ "$(field Section)" = "science" ] || errors+=("Section is '$(field Section)', expected 'science'")
[ -n "$(field Maintainer)" ] || errors+=("no Maintainer field")
[ -n "$(field Description)" ] || errors+=("no Description field")
dep_field=$(field Depends)
[ -n "$dep_field" ] || errors+=("no Depends line")
dep_names=$(printf '%s\n' "$dep_field" | names)
for pkg in $depends; do
  grep -qxF -- "$pkg" <<<"$dep_names" || errors+=("Depends lacks '$pkg' (Depends: $dep_field)")
done
rec_names=$( { field Depends; echo ,; field Recommends; } | names)
for pkg in $recommends; do
  grep -qxF -- "$pkg" <<<"$rec_names" || errors+=("neither Depends nor Recommends names '$pkg'")
done
# Every named package must exist in the archive this system knows, when apt
# has package lists (catches misspelt or wrong-release names).
if command -v apt-cache >/dev/null 2>&1 && apt-cache show --no-all-versions libc6 >/dev/null 2>&1; then
  for pkg in $( { field Depends; echo ,; field Recommends; echo ,; field Suggests; } | names | sort -u); do
    apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 ||
      errors+=("'$pkg' is not a package known to apt on this system")
  done
fi
if [ ${#errors[@]} -gt 0 ]; then
  printf '  %s\n' "${errors[@]}" >&2
  fail "control fields"
fi
note "control fields ok"

# --- contents ---------------------------------------------------------------------
# Paths as ./usr/..., from dpkg-deb -c: the last column, or the one before
# " -> target" for a symbolic link (no spaces in our paths).
awk '{ if ($(NF-1) == "->") print $(NF-2); else print $NF }' "$tmp/contents.txt" |
  sed 's#/$##' >"$tmp/paths.txt"
has() { grep -qxF -- "./$1" "$tmp/paths.txt"; }
errors=()
wanted=(
  "usr/bin/ltlab"
  "usr/share/applications/$app_id.desktop"
  "usr/share/metainfo/$app_id.metainfo.xml"
  "usr/share/icons/hicolor/scalable/apps/$app_id.svg"
)
for p in "${wanted[@]}"; do
  has "$p" || errors+=("missing /$p")
done
grep -E "[[:space:]]\./usr/bin/ltlab$" "$tmp/contents.txt" | grep -q '^-rwx' ||
  errors+=("/usr/bin/ltlab is not an executable regular file")
for lib in $libs; do
  grep -qE "^\./usr/${module_dir//./\\.}/lib${lib}\.so(\.[0-9]+)*$" "$tmp/paths.txt" ||
    errors+=("missing /usr/$module_dir/lib$lib.so*")
done
grep -vE '^\.(/usr(/.*)?)?$' "$tmp/paths.txt" | sed 's/^/unexpected path outside \/usr: /' >"$tmp/stray.txt"
while IFS= read -r line; do errors+=("$line"); done <"$tmp/stray.txt"
grep -E '_CPack_Packages|CMakeFiles|/include/' "$tmp/paths.txt" | sed 's/^/build or development file packaged: /' >"$tmp/stray.txt"
while IFS= read -r line; do errors+=("$line"); done <"$tmp/stray.txt"
if [ ${#errors[@]} -gt 0 ]; then
  printf '  %s\n' "${errors[@]}" >&2
  echo "  contents:" >&2; sed 's/^/    /' "$tmp/contents.txt" >&2
  fail "package contents"
fi
note "contents ok ($(wc -l <"$tmp/paths.txt") entries)"

# --- extracted tree: desktop files, RUNPATHs, shared libraries ------------------------
root="$tmp/root"
dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x failed"
errors=()
if command -v desktop-file-validate >/dev/null 2>&1; then
  out=$(desktop-file-validate "$root/usr/share/applications/$app_id.desktop" 2>&1) ||
    errors+=("desktop-file-validate: $out")
  grep -qE 'error:|warning:' <<<"$out" && errors+=("desktop-file-validate: $out")
fi
if command -v appstreamcli >/dev/null 2>&1; then
  # validate-tree also checks that the launchable .desktop file is installed.
  out=$(appstreamcli validate-tree --no-net --strict "$root" 2>&1) ||
    errors+=("appstreamcli validate-tree: $out")
fi

build_real=$(cd "$build_dir" && pwd -P)
elfs=()
while IFS= read -r -d '' f; do
  if head -c 4 "$f" | grep -q 'ELF'; then elfs+=("$f"); fi
done < <(find "$root/usr/bin" "$root/usr/$module_dir" -type f -print0 2>/dev/null)
[ ${#elfs[@]} -gt 0 ] || errors+=("no ELF files in /usr/bin or /usr/$module_dir")
for f in "${elfs[@]}"; do
  rel=${f#"$root"}
  dyn=$(readelf -d "$f" 2>/dev/null)
  rpath=$(sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]$/\2/p' <<<"$dyn" | paste -sd: -)
  case ":$rpath" in
    *"$build_dir"*|*"$build_real"*) errors+=("$rel: RUNPATH '$rpath' points into the build tree") ;;
  esac
  if [ "${rel#/usr/bin/}" != "$rel" ]; then
    case ":$rpath:" in
      *":\$ORIGIN/../$module_dir:"*|*":\$ORIGIN/../$module_dir/:"*) ;;
      *) errors+=("$rel: RUNPATH '$rpath' lacks \$ORIGIN/../$module_dir") ;;
    esac
  fi
  # OpenMP OpenBLAS on purpose (see cmake/LtlabDependencies.cmake): a binary
  # needing libopenblas.so.0 must search the openblas-openmp folder first.
  if grep -q 'NEEDED.*\[libopenblas\.so\.0\]' <<<"$dyn"; then
    case "$rpath" in
      *openblas-openmp*) ;;
      *) errors+=("$rel: needs libopenblas.so.0 but RUNPATH '$rpath' lacks the openblas-openmp folder") ;;
    esac
  fi
  # Every shared library must resolve. Executables on their own RUNPATH;
  # libraries also with the module folder on the path, as when ltlab has
  # already loaded its siblings.
  if [ "${rel#/usr/bin/}" != "$rel" ]; then
    ldd_out=$(env -u LD_LIBRARY_PATH ldd "$f" 2>&1)
  else
    ldd_out=$(LD_LIBRARY_PATH="$root/usr/$module_dir" ldd "$f" 2>&1)
  fi
  missing=$(grep 'not found' <<<"$ldd_out" | sed 's/^[[:space:]]*//' | tr '\n' ' ')
  [ -z "$missing" ] || errors+=("$rel: unresolved libraries: $missing")
  if grep -q 'libopenblas\.so\.0' <<<"$ldd_out"; then
    blas=$(sed -n 's/.*libopenblas\.so\.0 => \([^ ]*\).*/\1/p' <<<"$ldd_out")
    note "$rel: libopenblas.so.0 => $blas"
  fi
done
if [ ${#errors[@]} -gt 0 ]; then
  printf '  %s\n' "${errors[@]}" >&2
  fail "installed tree"
fi
note "installed tree ok (${#elfs[@]} ELF files)"
note "PASS $(basename "$deb")"

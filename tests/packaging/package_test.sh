#!/usr/bin/env bash
# Packaging tests, one mode per ctest test (see CMakeLists.txt here):
#   build               configure a scratch tree like `make package` (prefix /usr, Release), build
#                       only what the packages install, cpack -> 2 .deb + 2 .rpm
#   deb_metadata        dpkg-deb -I/-c: Depends (shlibdeps), conffiles, scripts, file layout
#   rpm_metadata        rpm -qp: requires, %config(noreplace), scripts, file list == the .deb's
#   deb_root_run        dpkg --root: unpack both .debs into an empty root, --check the packaged
#                       config, start the installed daemon, socket.io-client receives a publish
#   sdk_validator       build examples/validator-example out of tree against the root's -dev files
#                       only, load it into the installed daemon, good token in, bad tokens out
#   maintainer_scripts  in a private mount namespace, an overlay of this system (changes vanish):
#                       dpkg -i, user + state dir, the unit's ExecStartPre --check, the daemon as
#                       user streamfence, conffile kept on reinstall, remove stops, purge cleans
# Environment (set by ctest): SF_SOURCE_DIR, SF_PKG_WORK, SF_NODE, SF_CMAKE, SF_CPACK.
# Exit 77 = skipped (a tool is missing), printed with the reason.
set -euo pipefail

mode=${1:?mode}
SRC=${SF_SOURCE_DIR:?SF_SOURCE_DIR not set}
WORK=${SF_PKG_WORK:?SF_PKG_WORK not set}
CMAKE=${SF_CMAKE:-cmake}
CPACK=${SF_CPACK:-cpack}
NODE=${SF_NODE:-node}
HERE=$(cd "$(dirname "$0")" && pwd)
B=$WORK/build
P=$B/packages
V=$(sed -n 's/^project(StreamFence VERSION \([0-9][0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
DEB=$P/streamfence_${V}_amd64.deb
DEVDEB=$P/streamfence-dev_${V}_amd64.deb
RPM=$P/streamfence-${V}-1.x86_64.rpm
DEVRPM=$P/streamfence-dev-${V}-1.x86_64.rpm
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
PLUGDIR=/usr/lib/$MA/streamfence/plugins
CONF=/etc/streamfence/streamfence.yaml
UNIT=/usr/lib/systemd/system/streamfence.service

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
skip() { echo "SKIPPED: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed ($2; scripts/setup.sh --test installs it)"; }
has_line() { grep -qxF -- "$2" <<<"$1" || fail "$3: no line '$2' in:"$'\n'"$1"; }
has() { grep -qE -- "$2" <<<"$1" || fail "$3: nothing matches /$2/ in:"$'\n'"$1"; }
hasnt() { ! grep -qE -- "$2" <<<"$1" || fail "$3: /$2/ should not match:"$'\n'"$(grep -E -- "$2" <<<"$1")"; }

tmp=$(mktemp -d /tmp/sf-pkg-XXXXXX)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

need_packages() {
  for f in "$DEB" "$DEVDEB" "$RPM" "$DEVRPM"; do
    [ -f "$f" ] || fail "$f missing: the packaging.build test did not produce it"
  done
}

# The packaged config with both listeners on port 0 (ephemeral) and every other key as shipped.
# $1: packaged config, $2: output, $3: prefix for absolute state paths ("" inside a real root).
ephemeral_config() {
  sed -E -e 's/^([[:space:]]+port:)[[:space:]]*[0-9]+[[:space:]]*$/\1 0/' \
         -e "s#^([[:space:]]+spillRootPath:[[:space:]]*)(/.*)\$#\\1$3\\2#" "$1" >"$2"
  local changed
  changed=$(diff "$1" "$2" | grep -c '^>' || true)
  [ "$changed" -ge 2 ] || fail "could not set the listener ports to 0 in $1"
  grep -qE '^[[:space:]]+port: 0$' "$2" || fail "no port: 0 in $2"
}

# Both file lists, paths only, no directories, leading ./ removed.
deb_files() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's#^\./#/#' | sort; }
rpm_files() { rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" 2>/dev/null | awk '$1 !~ /^d/ {print $2}' | sort; }

expect_runtime_layout() { # $1: file list, $2: what
  local l=$1 w=$2 p
  has_line "$l" /usr/bin/streamfenced "$w"
  has_line "$l" $CONF "$w"
  has_line "$l" $UNIT "$w"
  has_line "$l" /usr/share/doc/streamfence/README.md "$w"
  for p in overflow_drop_oldest overflow_reject_new overflow_coalesce overflow_snapshot_only overflow_spill \
           validator_static validator_jwt sink_prometheus sink_statsd storage_disk; do
    has_line "$l" "$PLUGDIR/$p.so" "$w"
  done
  hasnt "$l" '^/usr/include|/cmake/|/usr/etc|/usr/local|/\.build-id/' "$w"
  # Every bundled plugin of the source tree is shipped.
  for p in $(sed -nE 's/.*install\(TARGETS ([A-Za-z0-9_]+) LIBRARY DESTINATION \$\{SF_PLUGIN_INSTALL_DIR\}.*/\1/p' "$SRC"/plugins/*/CMakeLists.txt); do
    has_line "$l" "$PLUGDIR/$p.so" "$w (plugin of plugins/)"
  done
}

expect_dev_layout() {
  local l=$1 w=$2
  has_line "$l" /usr/include/streamfence/plugin.h "$w"
  has_line "$l" /usr/include/streamfence/plugin.hpp "$w"
  hasnt "$l" '/abi1/' "$w (the frozen ABI 1.1 header is a test fixture)"
  for f in StreamFenceSDKConfig.cmake StreamFenceSDKConfigVersion.cmake StreamFenceSDKTargets.cmake StreamFencePlugin.cmake; do
    has_line "$l" "/usr/lib/$MA/cmake/StreamFenceSDK/$f" "$w"
  done
  has_line "$l" /usr/share/doc/streamfence-dev/examples/validator-example/CMakeLists.txt "$w"
  has_line "$l" /usr/share/doc/streamfence-dev/examples/validator-example/validator_example.cpp "$w"
  hasnt "$l" '^/usr/bin|^/etc|/plugins/.*\.so$' "$w"
}

# An empty root with both .debs unpacked by dpkg itself (its database records the conffile).
# `dpkg --configure` would run postinst chrooted into the root, which has no shell, so the
# conffile stays <file>.dpkg-new as dpkg leaves it after unpacking; dpkg-deb -x then puts the
# files in their configured places (the full install with scripts: maintainer_scripts).
unpack_root() { # $1: root
  mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates"
  : >"$1/var/lib/dpkg/status"
  dpkg --root="$1" --force-depends --unpack "$DEB" "$DEVDEB" >"$tmp/dpkg-unpack.log" 2>&1 ||
    { cat "$tmp/dpkg-unpack.log"; fail "dpkg --root --unpack failed"; }
  [ -f "$1$CONF.dpkg-new" ] || fail "dpkg did not treat $CONF as a conffile (no .dpkg-new after unpack)"
  dpkg-deb -x "$DEB" "$1" && dpkg-deb -x "$DEVDEB" "$1"
}

case $mode in
build)
  need dpkg-deb "dpkg"; need dpkg-shlibdeps "dpkg-dev"; need rpmbuild "rpm"; need file "file"
  [ "${SF_PKG_CLEAN:-0}" = 1 ] && rm -rf "$B"
  mkdir -p "$B"
  rm -rf "$P"
  # Exactly the configure of `make package`, plus: cpack must not rebuild `all` (-j1) first.
  "$CMAKE" -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF \
    -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; fail "configure failed"; }
  # Build only the targets whose files the install rules pick up (streamfenced, plugins).
  targets=$(grep -rhoE "FILES \"$B/[^\"]+\"" --include=cmake_install.cmake "$B" | sed -E 's/^FILES "(.*)"$/\1/' |
            grep -v '/CMakeFiles/' | grep -v '\.cmake$' | xargs -n1 basename | sed 's/\.so$//' | sort -u)
  [ -n "$targets" ] || fail "found no installed build targets in $B"
  echo "building: $(echo $targets)"
  start=$(date +%s)
  "$CMAKE" --build "$B" -j "${SF_PKG_JOBS:-2}" --target $targets >"$WORK/build.log" 2>&1 ||
    { tail -50 "$WORK/build.log"; fail "build failed (full log: $WORK/build.log)"; }
  ok "built in $(( $(date +%s) - start )) s"
  (cd "$B" && "$CPACK" >"$WORK/cpack.log" 2>&1) || { cat "$WORK/cpack.log"; fail "cpack failed"; }
  for f in "$DEB" "$DEVDEB" "$RPM" "$DEVRPM"; do [ -s "$f" ] || fail "cpack did not produce $(basename "$f")"; done
  ok "packages: $(cd "$P" && echo *.deb *.rpm)"
  ;;

deb_metadata)
  need dpkg-deb "dpkg"; need_packages
  info=$(dpkg-deb -f "$DEB")
  has "$info" '^Package: streamfence$' "streamfence control"
  has "$info" "^Version: $V\$" "streamfence control"
  has "$info" '^Architecture: amd64$' "streamfence control"
  dep=$(dpkg-deb -f "$DEB" Depends)
  for d in adduser 'libc6 \(>= ' 'libstdc\+\+6 \(>= ' 'libpocofoundation[0-9]+ \(>= ' 'libpoconet[0-9]+ \(>= ' \
           'libpoconetssl[0-9]+ \(>= ' 'libyaml-cpp[0-9.]+ \(>= ' 'libssl3 \(>= '; do
    has "$dep" "(^|, )$d" "streamfence Depends (dpkg-shlibdeps)"
  done
  # Every library the binary and plugins need comes from some package in Depends.
  mkdir -p "$tmp/x" && dpkg-deb -x "$DEB" "$tmp/x"
  for so in $(find "$tmp/x" -type f \( -name '*.so' -o -name streamfenced \) -exec objdump -p {} \; 2>/dev/null |
              awk '$1 == "NEEDED" {print $2}' | sort -u); do
    owner=$(dpkg -S "*/$MA/$so" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$owner" ] || fail "NEEDED $so belongs to no installed package"
    has "$dep" "(^|, )$(sed 's/[.+]/\\&/g' <<<"$owner")( |,|$)" "Depends covers NEEDED $so ($owner)"
  done
  ok "Depends: $dep"
  ctl=$tmp/ctl && dpkg-deb -e "$DEB" "$ctl"
  [ "$(cat "$ctl/conffiles")" = "$CONF" ] || fail "conffiles is not exactly $CONF: $(cat "$ctl/conffiles")"
  for s in postinst prerm postrm; do
    [ -x "$ctl/$s" ] || fail "$s missing or not executable"
    sh -n "$ctl/$s" || fail "$s: shell syntax error"
  done
  has "$(cat "$ctl/postinst")" 'adduser --system' "postinst creates the system user"
  has "$(cat "$ctl/postinst")" '/var/lib/streamfence/spill' "postinst creates the spill dir"
  has "$(cat "$ctl/prerm")" 'systemctl stop streamfence' "prerm stops the service"
  has "$(cat "$ctl/postrm")" 'purge' "postrm handles purge"
  ok "conffiles + maintainer scripts"
  files=$(deb_files "$DEB")
  expect_runtime_layout "$files" "streamfence.deb"
  [ -x "$tmp/x/usr/bin/streamfenced" ] || fail "/usr/bin/streamfenced not executable"
  file -b "$tmp/x/usr/bin/streamfenced" | grep -q 'stripped' && ! file -b "$tmp/x/usr/bin/streamfenced" | grep -q 'not stripped' ||
    fail "/usr/bin/streamfenced is not stripped"
  unit=$(cat "$tmp/x$UNIT")
  has "$unit" '^ExecStartPre=/usr/bin/streamfenced --check -c /etc/streamfence/streamfence.yaml$' "unit"
  has "$unit" '^ExecStart=/usr/bin/streamfenced -c /etc/streamfence/streamfence.yaml$' "unit"
  has "$unit" '^ExecReload=/bin/kill -HUP \$MAINPID$' "unit"
  for k in 'User=streamfence' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'StateDirectory=streamfence' 'ProtectHome=yes' 'PrivateTmp=yes'; do
    has_line "$unit" "$k" "unit"
  done
  has "$(cat "$tmp/x$CONF")" 'spillRootPath: /var/lib/streamfence/' "packaged config keeps spill under /var/lib/streamfence"
  if command -v systemd-analyze >/dev/null; then
    # Offline syntax check of the unit (the binary it names is in the unpacked tree, not on /).
    sed "s#/usr/bin/streamfenced#$tmp/x/usr/bin/streamfenced#g" "$tmp/x$UNIT" >"$tmp/streamfence.service"
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/streamfence.service" 2>&1 || true)
    hasnt "$out" 'streamfence\.service:[0-9]+: |Unknown (key|section)|Failed to parse|bad-setting' "systemd-analyze verify"
    ok "systemd-analyze verify: unit parses"
  fi
  ok "streamfence.deb layout"
  devinfo=$(dpkg-deb -f "$DEVDEB")
  has "$devinfo" '^Package: streamfence-dev$' "dev control"
  has "$devinfo" '^Depends: .*cmake' "dev Depends"
  expect_dev_layout "$(deb_files "$DEVDEB")" "streamfence-dev.deb"
  ok "streamfence-dev.deb layout"
  ;;

rpm_metadata)
  need rpm "rpm"; need rpm2archive "rpm"; need_packages
  [ "$(rpm -qp --qf '%{NAME} %{VERSION} %{ARCH}' "$RPM" 2>/dev/null)" = "streamfence $V x86_64" ] || fail "rpm NAME/VERSION/ARCH"
  req=$(rpm -qp --requires "$RPM" 2>/dev/null)
  for r in 'libPocoFoundation\.so\.[0-9]+\(\)\(64bit\)' 'libPocoNet\.so\.[0-9]+\(\)\(64bit\)' 'libPocoNetSSL\.so' \
           'libyaml-cpp\.so' 'libssl\.so\.3' 'libstdc\+\+\.so\.6' 'libc\.so\.6' '^/bin/sh'; do
    has "$req" "$r" "rpm auto-requires"
  done
  ok "rpm requires: $(grep -c . <<<"$req") entries incl. libPoco*"
  [ "$(rpm -qp --configfiles "$RPM" 2>/dev/null)" = "$CONF" ] || fail "rpm --configfiles is not exactly $CONF"
  flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null | awk -v c=$CONF '$1 == c {print $2}')
  [[ $flags == *c* && $flags == *n* ]] || fail "$CONF is not %config(noreplace) (flags '$flags')"
  ok "$CONF is %config(noreplace)"
  scripts=$(rpm -qp --scripts "$RPM" 2>/dev/null)
  has "$scripts" '^postinstall scriptlet' "rpm scripts"
  has "$scripts" 'useradd -r' "rpm post creates the system user"
  has "$scripts" '/var/lib/streamfence/spill' "rpm post creates the spill dir"
  has "$scripts" '^preuninstall scriptlet' "rpm scripts"
  has "$scripts" 'systemctl stop streamfence' "rpm preun stops the service"
  has "$scripts" 'rm -rf /var/lib/streamfence' "rpm postun removes the state on erase"
  rpmfiles=$(rpm_files "$RPM")
  expect_runtime_layout "$rpmfiles" "streamfence.rpm"
  [ "$rpmfiles" = "$(deb_files "$DEB")" ] || fail "the .rpm and the .deb ship different files:"$'\n'"$(diff <(echo "$rpmfiles") <(deb_files "$DEB"))"
  ok "streamfence.rpm ships the same files as the .deb"
  devfiles=$(rpm_files "$DEVRPM")
  expect_dev_layout "$devfiles" "streamfence-dev.rpm"
  [ "$devfiles" = "$(deb_files "$DEVDEB")" ] || fail "streamfence-dev .rpm and .deb differ"
  has "$(rpm -qp --requires "$DEVRPM" 2>/dev/null)" '^cmake' "dev rpm requires cmake"
  # The payload itself: extract it (rpm2archive ships with rpm; no cpio needed) and --check.
  mkdir -p "$tmp/r" && rpm2archive - <"$RPM" | tar -xz -C "$tmp/r"
  "$tmp/r/usr/bin/streamfenced" --check -c "$tmp/r$CONF" --plugin-dir "$tmp/r$PLUGDIR" >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log"; fail "the .rpm's streamfenced --check rejects its packaged config"; }
  ok "the .rpm's payload passes --check with its own plugins"
  ;;

deb_root_run)
  need dpkg "dpkg"; [ -x "$NODE" ] || command -v "$NODE" >/dev/null || skip "node not installed"; need_packages
  R=$tmp/root && unpack_root "$R"
  st=$(dpkg --root="$R" -s streamfence)
  has "$st" '^Status: install ok unpacked$' "dpkg status in the root"
  has "$st" "^ $CONF [0-9a-f]+|^ $CONF newconffile" "dpkg records the conffile"
  [ "$(dpkg --root="$R" -L streamfence-dev | grep -c '^/usr/include/streamfence/')" -ge 2 ] || fail "dev files not registered"
  for h in plugin.h plugin.hpp; do  # the SDK's headers as they are in the tree (ABI 2), not an older copy
    cmp -s "$R/usr/include/streamfence/$h" "$SRC/sdk/include/streamfence/$h" || fail "packaged $h differs from sdk/include/streamfence/$h"
  done
  ok "dpkg --root: both packages unpacked into an empty root, $CONF registered as conffile"
  [ -x "$R/usr/bin/streamfenced" ] || fail "no $R/usr/bin/streamfenced"
  "$R/usr/bin/streamfenced" --version | grep -q "^streamfenced $V " || fail "--version does not say $V"
  "$R/usr/bin/streamfenced" --check -c "$R$CONF" --plugin-dir "$R$PLUGDIR" >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log"; fail "--check rejects the packaged config with the packaged plugins"; }
  grep -q "^config OK: " "$tmp/check.log" || fail "--check did not say config OK"
  ok "$(grep '^config OK' "$tmp/check.log")"
  # Without --plugin-dir the installed binary must look in $PLUGDIR (never in a build tree,
  # even though build trees exist on this machine): it names the directory when it is missing.
  if [ ! -d "$PLUGDIR" ]; then
    "$R/usr/bin/streamfenced" --check -c "$R$CONF" >"$tmp/check2.log" 2>&1 && fail "--check passed without plugins?"
    grep -q "event=plugin_dir_missing dir=$PLUGDIR\$" "$tmp/check2.log" ||
      { cat "$tmp/check2.log"; fail "the installed binary's default plugin dir is not $PLUGDIR"; }
    ok "default plugin dir of the installed binary: $PLUGDIR"
  fi
  mkdir -p "$R/var/lib/streamfence/spill"
  ephemeral_config "$R$CONF" "$tmp/streamfence.yaml" "$R"
  "$NODE" "$HERE/client.js" publish -- "$R/usr/bin/streamfenced" -c "$tmp/streamfence.yaml" --plugin-dir "$R$PLUGDIR"
  ;;

sdk_validator)
  need dpkg "dpkg"; need g++ "g++"; [ -x "$NODE" ] || command -v "$NODE" >/dev/null || skip "node not installed"; need_packages
  R=$tmp/root && unpack_root "$R"
  ex=$R/usr/share/doc/streamfence-dev/examples/validator-example
  [ -f "$ex/CMakeLists.txt" ] || fail "the -dev package has no example"
  # Out of tree: the example sources as shipped, only the root's /usr as prefix.
  cp -r "$ex" "$tmp/src"
  "$CMAKE" -S "$tmp/src" -B "$tmp/ob" -DCMAKE_PREFIX_PATH="$R/usr" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/oot.log" 2>&1 || { cat "$tmp/oot.log"; fail "configuring the example failed"; }
  sdkdir=$(sed -n 's/^StreamFenceSDK_DIR:PATH=//p' "$tmp/ob/CMakeCache.txt")
  [ "$sdkdir" = "$R/usr/lib/$MA/cmake/StreamFenceSDK" ] || fail "find_package(StreamFenceSDK) used $sdkdir, not the installed -dev files"
  "$CMAKE" --build "$tmp/ob" >>"$tmp/oot.log" 2>&1 || { cat "$tmp/oot.log"; fail "building the example failed"; }
  grep -q -- "-I$SRC\|$SRC/sdk" "$tmp/ob/CMakeFiles/validator_example.dir/flags.make" && fail "the example was compiled against the source tree"
  so=$tmp/ob/validator_example.so
  [ -f "$so" ] || fail "no validator_example.so"
  ok "validator_example.so built out of tree with find_package(StreamFenceSDK) from $sdkdir"
  # The user's plugin dir: the installed plugins plus the new .so.
  mkdir -p "$tmp/plugins" && cp -a "$R$PLUGDIR/." "$tmp/plugins/" && cp "$so" "$tmp/plugins/"
  cat >"$tmp/auth.yaml" <<EOF
# The user's config: the example validator guards /feed.
logLevel: info
pluginDir: $tmp/plugins
plugins:
  example:
    allow: ["alice:s3cret", "bob:hunter2"]
servers:
  default:
    host: 127.0.0.1
    port: 0
    auth: TOKEN
    tokenValidator: example
    spillRootPath: $tmp/spill
    control:
      host: 127.0.0.1
      port: 0
    namespaces:
      - path: /feed
        topics: [prices]
        authRequired: true
        deliveryMode: BEST_EFFORT
        overflowAction: DROP_OLDEST
EOF
  "$R/usr/bin/streamfenced" --check -c "$tmp/auth.yaml" >"$tmp/check.log" 2>&1 || { cat "$tmp/check.log"; fail "--check rejects the config naming the example validator"; }
  ok "--check accepts tokenValidator: example"
  "$NODE" "$HERE/client.js" auth "alice:s3cret" -- "$R/usr/bin/streamfenced" -c "$tmp/auth.yaml"
  ;;

maintainer_scripts)
  need dpkg "dpkg"; need unshare "util-linux"; need chroot "coreutils"; need adduser "adduser"
  [ -x "$NODE" ] || command -v "$NODE" >/dev/null || skip "node not installed"; need_packages
  [ "$(id -u)" = 0 ] || skip "needs root (mount namespace + overlay of /)"
  # Everything below runs in a private mount namespace: an overlay whose upper layer is a
  # tmpfs, so dpkg -i, the user it creates and the state dir vanish with the namespace.
  cp "$DEB" "$DEVDEB" "$tmp/"
  unshare -m --propagation private true 2>/dev/null || skip "cannot create a mount namespace here (unshare -m refused)"
  export SF_T=$tmp SF_NODE_BIN=$(command -v "$NODE") SF_CLIENT=$HERE/client.js SF_DEBN=$(basename "$DEB") SF_DEVN=$(basename "$DEVDEB") \
         SF_CONF=$CONF SF_PLUGDIR=$PLUGDIR SF_UNIT=$UNIT
  set +e
  unshare -m --propagation private bash "$HERE/maintainer_scripts.sh"
  rc=$?
  set -e
  exit $rc
  ;;

*) fail "unknown mode $mode" ;;
esac

#!/usr/bin/env bash
# Run by package_test.sh maintainer_scripts inside `unshare -m` (a private mount namespace).
# Builds a throwaway copy of this Debian system: an overlay of / whose upper layer is a tmpfs,
# chroots into it and installs, upgrades, removes and purges the real .deb with dpkg, with
# its real maintainer scripts (adduser, deluser, ...). Nothing reaches the real system: the
# mounts and every change disappear when this namespace's last process exits.
#
# systemd is not PID 1 in this container, so /run/systemd/system is absent and the scripts
# skip systemctl. To check what they ask of systemd, a second pass provides that directory
# and a recording `systemctl` (a test double in /usr/local/sbin of the overlay, which logs its
# arguments) and asserts the calls: install enables + starts, upgrade try-restarts, remove stops.
set -euo pipefail
T=${SF_T:?} M=$SF_T/ovl/merged
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
skip() { echo "SKIPPED: $*"; exit 77; }

mkdir -p "$T/ovl"
mount -t tmpfs -o size=512m tmpfs "$T/ovl"
mkdir -p "$T/ovl/upper" "$T/ovl/work" "$M"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ovl/upper,workdir=$T/ovl/work" "$M" 2>"$T/ovl-err" ||
  skip "overlayfs over / is not permitted here ($(cat "$T/ovl-err"))"
mount --rbind /dev "$M/dev"
mount -t proc proc "$M/proc" 2>/dev/null || mount --rbind /proc "$M/proc"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
mkdir -p "$M/tmp/pkgs" && cp "$T/$SF_DEBN" "$T/$SF_DEVN" "$M/tmp/pkgs/"

PATHS=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
in_root() { chroot "$M" env -i PATH=$PATHS LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
dpkg_in() { in_root dpkg "$@" >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log"; fail "dpkg $* failed"; }; }
calls() { cat "$M/run/systemctl.calls" 2>/dev/null || true; }
reset_calls() { : >"$M/run/systemctl.calls"; }

in_root dpkg -s streamfence >/dev/null 2>&1 && skip "streamfence is installed on this machine already; the overlay would not start clean"
in_root getent passwd streamfence >/dev/null && skip "a user streamfence exists on this machine already"

# ---- pass 1: no systemd (as in this container): install, user, state, --check, run
dpkg_in -i "/tmp/pkgs/$SF_DEBN" "/tmp/pkgs/$SF_DEVN"
st=$(in_root dpkg -s streamfence)
grep -q '^Status: install ok installed$' <<<"$st" || fail "streamfence not configured: $st"
grep -qE "^ $SF_CONF [0-9a-f]{32}\$" <<<"$st" || fail "dpkg did not record $SF_CONF as a conffile: $st"
ok "dpkg -i (dependencies checked against this system): installed, $SF_CONF is a conffile"
pw=$(in_root getent passwd streamfence) || fail "postinst did not create user streamfence"
IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
[ "$uid" -lt 1000 ] || fail "streamfence is not a system user (uid $uid)"
[ "$home" = /var/lib/streamfence ] || fail "home is $home"
[[ $shell == */nologin ]] || fail "shell is $shell"
in_root getent group streamfence >/dev/null || fail "no group streamfence"
[ "$(in_root stat -c '%U:%G %a' /var/lib/streamfence)" = "streamfence:streamfence 750" ] || fail "state dir: $(in_root stat -c '%U:%G %a' /var/lib/streamfence)"
[ "$(in_root stat -c '%U' /var/lib/streamfence/spill)" = streamfence ] || fail "spill dir not owned by streamfence"
ok "postinst: system user streamfence (uid $uid), /var/lib/streamfence{,/spill} owned by it"

# The unit's ExecStartPre, verbatim, as the unit's user: the packaged config passes with the
# daemon's default plugin dir (no --plugin-dir).
pre=$(sed -n 's/^ExecStartPre=//p' "$M$SF_UNIT")
[ -n "$pre" ] || fail "no ExecStartPre in $SF_UNIT"
# shellcheck disable=SC2086
chroot --userspec=streamfence:streamfence "$M" $pre >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "ExecStartPre failed: $pre"; }
grep -q "plugin dir: $SF_PLUGDIR)" "$T/check.log" || { cat "$T/check.log"; fail "--check did not use $SF_PLUGDIR"; }
ok "ExecStartPre as user streamfence: $(grep '^config OK' "$T/check.log")"

# ExecStart as user streamfence, on the packaged config with ephemeral ports.
sed -E 's/^([[:space:]]+port:)[[:space:]]*[0-9]+[[:space:]]*$/\1 0/' "$M$SF_CONF" >"$M/tmp/streamfence.yaml"
"$SF_NODE_BIN" "$SF_CLIENT" publish -- chroot --userspec=streamfence:streamfence "$M" /usr/bin/streamfenced -c /tmp/streamfence.yaml

# ---- conffile kept on reinstall/upgrade
echo "# local change kept on upgrade" >>"$M$SF_CONF"
dpkg_in -i "/tmp/pkgs/$SF_DEBN"
grep -q '^# local change kept on upgrade$' "$M$SF_CONF" || fail "reinstalling replaced the changed conffile"
ls "$M/etc/streamfence" | grep -q 'dpkg-' && fail "dpkg left $(ls "$M/etc/streamfence")"
ok "a changed $SF_CONF survives reinstalling the package"

# ---- remove keeps config, user and state; purge removes them
dpkg_in -r streamfence-dev streamfence
[ -e "$M/usr/bin/streamfenced" ] && fail "remove left /usr/bin/streamfenced"
[ -e "$M$SF_PLUGDIR" ] && fail "remove left $SF_PLUGDIR"
[ -f "$M$SF_CONF" ] || fail "remove deleted the conffile"
in_root getent passwd streamfence >/dev/null || fail "remove deleted the user"
[ -d "$M/var/lib/streamfence" ] || fail "remove deleted the state dir"
ok "remove: program gone; config, user and state kept"
dpkg_in -P streamfence
in_root dpkg -s streamfence >/dev/null 2>&1 && fail "streamfence still known to dpkg after purge"
[ -e "$M/etc/streamfence" ] && fail "purge left $(ls -la "$M/etc/streamfence")"
[ -e "$M/var/lib/streamfence" ] && fail "purge left /var/lib/streamfence"
in_root getent passwd streamfence >/dev/null && fail "purge left user streamfence"
in_root getent group streamfence >/dev/null && fail "purge left group streamfence"
ok "purge: config, /var/lib/streamfence, user and group removed"

# ---- pass 2: what the scripts ask of systemd (recording test double, see header)
mkdir -p "$M/run/systemd/system"
cat >"$M/usr/local/sbin/systemctl" <<'EOF'
#!/bin/sh
echo "$*" >>/run/systemctl.calls
exit 0
EOF
chmod 755 "$M/usr/local/sbin/systemctl"
reset_calls
dpkg_in -i "/tmp/pkgs/$SF_DEBN"
c=$(calls)
for want in daemon-reload "enable streamfence.service" "start streamfence.service"; do
  grep -qxF "$want" <<<"$c" || fail "install did not call systemctl $want (calls: $c)"
done
ok "install: systemctl daemon-reload, enable, start"
reset_calls
dpkg_in -i "/tmp/pkgs/$SF_DEBN"
c=$(calls)
grep -qxF "try-restart streamfence.service" <<<"$c" || fail "upgrade did not try-restart (calls: $c)"
grep -qx "stop streamfence.service" <<<"$c" && fail "upgrade stopped the service (calls: $c)"
ok "upgrade: systemctl try-restart, no stop"
reset_calls
dpkg_in -r streamfence
c=$(calls)
grep -qxF "stop streamfence.service" <<<"$c" || fail "remove did not stop the service (calls: $c)"
grep -qxF "disable streamfence.service" <<<"$c" || fail "remove did not disable the service (calls: $c)"
ok "remove: systemctl stop, disable"
dpkg_in -P streamfence
in_root getent passwd streamfence >/dev/null && fail "purge left user streamfence"
ok "maintainer scripts behave; the overlay vanishes with this namespace"

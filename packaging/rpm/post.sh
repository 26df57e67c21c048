# Create the system user and the state directory (spill lives under it).
getent group streamfence >/dev/null || groupadd -r streamfence
getent passwd streamfence >/dev/null || useradd -r -g streamfence -d /var/lib/streamfence -s /sbin/nologin -c "StreamFence server" streamfence
mkdir -p /var/lib/streamfence/spill
chown -R streamfence:streamfence /var/lib/streamfence
chmod 0750 /var/lib/streamfence
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  # $1 == 1: first install: enable per the distribution's preset policy.
  if [ "$1" = 1 ]; then systemctl preset streamfence.service >/dev/null 2>&1 || :; fi
fi

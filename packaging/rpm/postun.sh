if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
# $1 >= 1: upgrade: restart the new version if the service was running.
if [ "$1" -ge 1 ] 2>/dev/null && [ -d /run/systemd/system ]; then
  systemctl try-restart streamfence.service >/dev/null 2>&1 || :
fi
# $1 == 0: erase. RPM has no purge, so erasing removes the state, the user and its group
# (a changed config is kept as /etc/streamfence/streamfence.yaml.rpmsave).
if [ "$1" = 0 ]; then
  rm -rf /var/lib/streamfence
  getent passwd streamfence >/dev/null && { userdel streamfence >/dev/null 2>&1 || :; }
  getent group streamfence >/dev/null && { groupdel streamfence >/dev/null 2>&1 || :; }
  :
fi

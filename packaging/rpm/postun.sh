if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
if [ "$1" = 0 ]; then
  rm -rf /var/lib/streamfence
  getent passwd streamfence >/dev/null && userdel streamfence >/dev/null 2>&1 || :
fi

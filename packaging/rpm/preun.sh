# $1 == 0: erase (not upgrade): stop and disable the service.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
  systemctl stop streamfence.service >/dev/null 2>&1 || :
  systemctl disable streamfence.service >/dev/null 2>&1 || :
fi

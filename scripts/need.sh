# Sourced by the scripts here: `need COMMAND PACKAGE` installs Debian's
# PACKAGE when COMMAND is missing (as root, or through sudo).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (Debian package)" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

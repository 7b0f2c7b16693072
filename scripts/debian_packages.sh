# Sourced by the installers of other languages' toolchains (clients/*/install): Debian
# packages installed only where missing, through apt as root or password-less sudo.

# superapp_apt_install WHO PACKAGE...: install the PACKAGEs that are not installed yet;
# on failure print one line, prefixed with WHO, naming them and how to install them, and
# return 1.
superapp_apt_install() {
  local who="$1"
  shift
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "$who: no dpkg: the toolchain comes from Debian's packages (apt)" >&2
    return 1
  fi
  local package missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  local run=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      run=(sudo -n)
    else
      echo "$who: missing Debian packages (run as root: apt-get install --no-install-recommends ${missing[*]})" >&2
      return 1
    fi
  fi
  echo "$who: apt-get install ${missing[*]}" >&2
  # Another apt may hold the lock (a shared machine, the other installers): wait for it.
  local install=("${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
    -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}")
  # A machine whose package lists were never fetched knows none of these names yet.
  "${install[@]}" >&2 || { "${run[@]}" apt-get update -q >&2 && "${install[@]}" >&2; } || {
    echo "$who: apt-get could not install ${missing[*]}" >&2
    return 1
  }
}

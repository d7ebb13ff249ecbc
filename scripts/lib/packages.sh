# How this user may install the distribution's packages: prints nothing as
# root and `sudo -n` with passwordless sudo; fails otherwise.
package_sudo() {
  if [ "$(id -u)" -eq 0 ]; then
    echo ""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "sudo -n"
  else
    return 1
  fi
}

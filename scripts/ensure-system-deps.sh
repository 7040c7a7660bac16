#!/usr/bin/env bash
# Installs the system packages the tests need when they are missing:
#   gh        the real GitHub CLI, driven against a local fake GitHub API
#   chromium  the real browser for pv-web's browser tests
#   systemd-container, debootstrap  the live suite (test/live/) boots a
#             Debian 12 with systemd as PID 1 in a container
#   acl, bubblewrap  ACLs and the agent's jail, used by tests and the install
#   nats-server  NATS with JetStream, the work queue of dispatch: nats (packages/queue tests)
# and checks for git and systemd-analyze. Idempotent; quiet when all is there.
set -euo pipefail

want=()
command -v git >/dev/null 2>&1 || want+=(git)
command -v gh >/dev/null 2>&1 || want+=(gh)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
command -v systemd-nspawn >/dev/null 2>&1 || want+=(systemd-container)
command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
command -v setfacl >/dev/null 2>&1 || want+=(acl)
command -v bwrap >/dev/null 2>&1 || want+=(bubblewrap)
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || want+=(nats-server)

[ ${#want[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-system-deps: missing ${want[*]}; run as root: apt-get install -y ${want[*]}" >&2
  exit 1
fi
echo "ensure-system-deps: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null

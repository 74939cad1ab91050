#!/usr/bin/env bash
# Set up a fresh Debian machine for hybrid (as root): the Debian packages the lab and the test tiers use,
# then `npm ci`, which builds the native interceptor and the TypeScript. CI runs this too (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages): sudo $0" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# runsc: the gVisor sandbox (the lab's control plane runs in it; the sandbox tier tests in it);
# golang-go: the Go tracee; strace, proot: benchmark baselines (strace also records the join test's execs); openssh-server, openssh-client, iproute2:
# lab worker hosts (sudo, openssl: their users' sudo with a password); iptables: runsc's network set-up;
# tinyproxy, docker-registry: k3s download tests and the remote tier (HTTP proxy, OCI registry); g++, make, python3: node-gyp for the native addon; hyperfine: benchmarks;
# tmux: the lab test types Ctrl-C into a real terminal; curl: lab workers check the API with it, as real
# workers do.
apt-get install -y -qq --no-install-recommends \
  runsc golang-go strace proot openssh-server openssh-client iproute2 sudo openssl iptables tinyproxy docker-registry \
  g++ make python3 ca-certificates util-linux procps perl hyperfine tmux curl >/dev/null
# systemd (not started): `systemd-analyze verify` checks the agent's unit; without it that one test skips, saying why.
command -v systemd-analyze >/dev/null || apt-get install -y -qq --no-install-recommends systemd >/dev/null ||
  echo "setup: systemd could not be installed; the agent unit's systemd-analyze check will skip" >&2
# systemd-container (systemd-nspawn), debootstrap: the lab's init hosts (scripts/lab/init-hosts.sh) boot systemd
# or OpenRC as PID 1 in a container, on Debian roots debootstrap makes once from Debian's mirror; built here
# (a few minutes), so no test waits for them.
apt-get install -y -qq --no-install-recommends systemd-container debootstrap >/dev/null
bash scripts/lab/init-hosts.sh root systemd >/dev/null
bash scripts/lab/init-hosts.sh root openrc >/dev/null
# kubectl: tests and users check the cluster with it. Debian ships it as kubernetes-client.
command -v kubectl >/dev/null || apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null

# sqlite3: the floor scripts/bench/snapshot.sh prints beside hybrid's snapshots (`sqlite3 .backup` of kine's file).
command -v sqlite3 >/dev/null || apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null

# npm ci builds the native addon and the TypeScript (scripts/build.js: node-gyp's output only on failure).
npm ci
# `hybrid` on PATH (in the lab's sandbox too, which sees this root), as the hints hybrid prints name it.
ln -sfn "$PWD/bin/run.js" /usr/local/bin/hybrid
echo "setup: done (hybrid --version: $(hybrid --version))"

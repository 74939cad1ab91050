#!/usr/bin/env bash
# Run a command inside a real gVisor sandbox (Debian's runsc with a 9p root: no overlayfs, no /dev/kmsg,
# most /proc/sys tunables missing), as a user inside such a sandbox runs hybrid.
#
#   in-sandbox.sh [--netns NS] [--loopback-address A] [--cwd DIR] -- CMD…
#
# --netns NS: the sandbox's network comes from namespace NS (workers.sh coordinator makes one that takes
#   no inbound connections); runsc puts the sandbox behind NAT in a namespace of its own inside NS.
#   Without it, runsc does the same from this machine's own network.
# --loopback-address A: A/32 is on the sandbox's loopback device before CMD starts. This runsc lets the
#   sandbox share the host kernel's network stack (its own stack refuses to start here), and that stack
#   takes no address changes from inside; so the address `hybrid up` would put there (the advertised
#   address, in tunnel mode) is put there from outside. A sandbox with a network stack of its own lets
#   hybrid do it itself.
# One SIGINT or SIGTERM to this script is handed to runsc, which gives CMD a SIGINT; the script exits
# with CMD's status. runsc removes the namespace it made for the sandbox when it ends; if it was killed
# instead, this script removes it (found by the sandbox process's namespace, never by its name).
set -euo pipefail

die() {
  echo "in-sandbox.sh: $*" >&2
  exit 2
}
netns='' address='' cwd=$PWD
while [ $# -gt 0 ]; do
  case $1 in
  --netns) netns=$2 && shift ;;
  --loopback-address) address=$2 && shift ;;
  --cwd) cwd=$2 && shift ;;
  --) shift && break ;;
  *) die "unknown option $1 (usage: in-sandbox.sh [--netns NS] [--loopback-address A] [--cwd DIR] -- CMD…)" ;;
  esac
  shift
done
[ $# -gt 0 ] || die "no command (usage: in-sandbox.sh [--netns NS] [--loopback-address A] [--cwd DIR] -- CMD…)"
[ "$(id -u)" -eq 0 ] || die "run as root (gVisor needs it)"
command -v runsc >/dev/null || die "runsc is missing: run scripts/setup.sh first"
[ -z "$netns" ] || ip netns pids "$netns" >/dev/null 2>&1 || die "there is no network namespace $netns"
[ -z "$address" ] || [[ $address =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "--loopback-address $address is not an IPv4 address"

# Inside, CMD waits until the address is there. It asks the kernel (can a socket bind to it?): this
# runsc's sandbox lists its interfaces as they were when it started, and does not see files made from
# outside after it started either.
inner=("$@")
if [ -n "$address" ]; then
  probe='const net = require("net"), address = process.argv[1], until = Date.now() + 30000
    ;(function probe() {
      const server = net.createServer().once("error", () => {
        if (Date.now() < until) return setTimeout(probe, 50)
        console.error(`in-sandbox.sh: ${address} never appeared on the loopback device`)
        process.exit(1)
      })
      server.listen(0, address, () => server.close(() => process.exit(0)))
    })()'
  # shellcheck disable=SC2016 # expanded inside the sandbox
  inner=(sh -c 'node -e "$0" "$1" || exit 1; shift; exec "$@"' "$probe" "$address" "$@")
fi
launch=(runsc --network=host --ignore-cgroups do -force-overlay=false -quiet -cwd "$cwd" "${inner[@]}")
[ -z "$netns" ] || launch=(ip netns exec "$netns" "${launch[@]}")

# runsc and what it starts get a session of their own, out of the terminal's process group: a Ctrl-C
# there would kill its gofer, and the sandbox with it, before CMD could stop. (setsid execs: $! is it.)
setsid "${launch[@]}" </dev/null &
runsc=$!
stopping=''
stop() {
  if [ -z "$stopping" ]; then
    stopping=1
    kill -INT "$runsc" 2>/dev/null || true
  fi
}
trap stop INT TERM

descendants() { # PID: every process below it (runsc is Go: any of its threads may be a parent)
  local child list=''
  list=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  for child in $list; do
    echo "$child"
    descendants "$child"
  done
}
if [ -n "$address" ]; then
  # The sandbox's namespace: of runsc's processes, the one in a namespace other than NS (or this one)
  # that has a link besides its loopback (the gofer's namespace is empty).
  if [ -n "$netns" ]; then outer=$(stat -L -c %i "/run/netns/$netns"); else outer=$(stat -L -c %i /proc/self/ns/net); fi
  placed='' made=''
  trap '[ -z "$made" ] || [ ! -e "/run/netns/$made" ] || ip netns del "$made"' EXIT
  for _ in $(seq 300); do
    for pid in $(descendants "$runsc"); do
      inode=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || continue
      [ "$inode" != "$outer" ] || continue
      links=$(nsenter --net="/proc/$pid/ns/net" ip -o link show 2>/dev/null) || continue
      [[ $links == *$'\n'* ]] || continue
      nsenter --net="/proc/$pid/ns/net" ip addr add "$address/32" dev lo && placed=1
      for named in /run/netns/*; do
        [ "$(stat -L -c %i "$named" 2>/dev/null)" = "$inode" ] && made=${named##*/}
      done
      break 2
    done
    kill -0 "$runsc" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$placed" ] || echo "in-sandbox.sh: could not put $address on the sandbox's loopback device" >&2
fi

while kill -0 "$runsc" 2>/dev/null; do wait "$runsc" || true; done
wait "$runsc"

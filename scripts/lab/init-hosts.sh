#!/usr/bin/env bash
# Lab worker hosts that boot a real init system as PID 1: systemd (or OpenRC) in a systemd-nspawn container,
# with sshd as the init's own service, on a lab made by workers.sh (its claimed subnet, bridge, key and
# record). Most real workers run systemd; the hosts of workers.sh have no init, so hybrid's systemd and
# OpenRC services run only here.
#
#   init-hosts.sh root [systemd|openrc]       build the cached Debian bookworm root once (prints its path)
#   init-hosts.sh host-add NAME INDEX [--init systemd|openrc]
#                                             boot host NAME at NET.(10+INDEX) on the lab of HYBRID_LAB_DIR
#
# The root is made by debootstrap (variant minbase plus the packages below) under ROOTS, in a temporary
# directory renamed into place when complete, with a marker of what it was made from: a changed package
# list builds it again. Each host gets an overlay of it (upper and work dirs under LAB/hosts/NAME; mounted
# at LAB/hosts/NAME/fs, so its files are seen from this machine at the same place as a workers.sh host's),
# its own host key, machine id and hostname, the lab key in root's authorized_keys, and this machine's
# /usr/bin/node bound read-only (the k3s stand-in is a Node script). It boots in the network namespace
# workers.sh makes for a host (address and veth on the lab's bridge). Every resource (namespace, veth,
# overlay mount, nspawn's pid, the container's PID 1) is recorded in LAB/state as it is made, so
# `workers.sh down` and `host-remove` take it out by its record, as any lab host.
set -euo pipefail

HERE=$(dirname "$(readlink -f "$0")")
ROOTS=${HYBRID_LAB_ROOTS:-/var/cache/hybrid/lab-root}
MIRROR=${HYBRID_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# What every root holds: an init, sshd as its service, and what hybrid and the stand-in use on a worker
# (ip, iptables, curl, ps, mount, modprobe, sudo).
COMMON=dbus,openssh-server,iproute2,iptables,sudo,curl,procps,util-linux,kmod
# debootstrap installs an init's packages with the rest; OpenRC's come after, from apt inside the root, as
# debootstrap takes the first of sysvinit-core's alternatives (sysv-rc), which openrc replaces.
declare -A INIT_PACKAGES=([systemd]=systemd,systemd-sysv [openrc]='')
declare -A INIT_AFTER=([systemd]='' [openrc]='sysvinit-core openrc')

# workers.sh's functions (record, forget, records, load_lab, start_time, wait_for, die…), not its main.
HYBRID_LAB_LIBRARY=yes
# shellcheck source=workers.sh
. "$HERE/workers.sh"

root_dir() { echo "$ROOTS/$SUITE-$1"; }

build_root() { # INIT: the cached root for that init, made when missing or made from another list
  local init=$1 packages dir marker tmp
  [ -n "${INIT_PACKAGES[$init]+set}" ] || bad_usage "root: init must be systemd or openrc, not '$init'"
  packages=$COMMON${INIT_PACKAGES[$init]:+,${INIT_PACKAGES[$init]}}
  dir=$(root_dir "$init")
  marker="suite=$SUITE variant=minbase include=$packages${INIT_AFTER[$init]:+ then=${INIT_AFTER[$init]// /,}}"
  if [ "$(cat "$dir/.hybrid-lab-root" 2>/dev/null)" = "$marker" ]; then
    echo "$dir"
    return 0
  fi
  mkdir -p "$ROOTS"
  exec 8>"$ROOTS/.lock-$init" # one build of a root at a time (parallel test files may ask at once)
  flock 8
  if [ "$(cat "$dir/.hybrid-lab-root" 2>/dev/null)" = "$marker" ]; then # built while we waited
    exec 8>&-
    echo "$dir"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  tmp=$(mktemp -d "$ROOTS/.build-$init.XXXXXX")
  chmod 755 "$tmp" # the hosts' /: its services' own users must get through it
  echo "init-hosts.sh: building the $init root at $dir (debootstrap $SUITE from $MIRROR)" >&2
  if ! debootstrap --variant=minbase --include="$packages" "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1; then
    rm -rf "$tmp"
    die "debootstrap failed (its log: $tmp.log)"
  fi
  # shellcheck disable=SC2086 # the package names, one word each
  if [ -n "${INIT_AFTER[$init]}" ] && ! install_after "$tmp" ${INIT_AFTER[$init]} >>"$tmp.log" 2>&1; then
    rm -rf "$tmp"
    die "installing ${INIT_AFTER[$init]} in the $init root failed (its log: $tmp.log)"
  fi
  prepare_root "$init" "$tmp"
  echo "$marker" >"$tmp/.hybrid-lab-root"
  # Into place whole: the old root (another list) goes aside first, then is removed.
  [ ! -e "$dir" ] || mv -T "$dir" "$tmp.old"
  mv -T "$tmp" "$dir"
  rm -rf "$tmp.old" "$tmp.log"
  exec 8>&-
  echo "$dir"
}

install_after() { # DIR PACKAGES…: apt-get install in the root (its /proc and this machine's resolver lent)
  local dir=$1 rc=0
  shift
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  mount -t proc proc "$dir/proc"
  chroot "$dir" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"' sh "$@" || rc=$?
  umount "$dir/proc"
  rm -f "$dir/etc/resolv.conf"
  return "$rc"
}

prepare_root() { # INIT DIR: what no host should inherit from the build, and what every host needs
  local init=$1 dir=$2
  # Host keys and machine id are each host's own (made at host-add; an empty machine-id gets a fresh one at boot).
  rm -f "$dir"/etc/ssh/ssh_host_*
  : >"$dir/etc/machine-id"
  # sshd reads only the ed25519 key each host gets (no warnings for the keys it lacks).
  sed -i '/^Include /a HostKey /etc/ssh/ssh_host_ed25519_key' "$dir/etc/ssh/sshd_config"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  if [ "$init" = systemd ]; then
    # No login prompt on the console nspawn gives the container (its output goes to the host's log).
    ln -sfn /dev/null "$dir/etc/systemd/system/console-getty.service"
  else
    rc_setup_root "$dir"
  fi
}

rc_setup_root() { # DIR: OpenRC in a container made by nspawn, sshd in its default runlevel, no gettys
  local dir=$1
  sed -i 's/^#\?rc_sys=.*/rc_sys="systemd-nspawn"/' "$dir/etc/rc.conf"
  sed -i '/^[^#].*getty/ s/^/#/' "$dir/etc/inittab"
  [ -e "$dir/etc/runlevels/default/ssh" ] || ln -s /etc/init.d/ssh "$dir/etc/runlevels/default/ssh"
}

host_add_booted() { # NAME INDEX [--init systemd|openrc]
  local name=$1 index=$2 init=systemd root dir ns veth address holder pid1 inodes
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
    --init) init=$2 && shift ;;
    *) die "host-add: unknown option $1" ;;
    esac
    shift
  done
  [[ $name =~ ^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$ ]] || die "host-add: '$name' is not a host name (a-z, 0-9, '-', starting with a letter)"
  [[ $index =~ ^[0-9]+$ ]] && [ "$index" -ge 1 ] && [ "$index" -le 100 ] || die "host-add: INDEX must be 1..100"
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing (apt-get install systemd-container)"
  load_lab
  [ -z "$(records "$name" netns)" ] || die "host-add: $name exists"
  root=$(build_root "$init")
  dir=$LAB/hosts/$name
  # A host made anew starts from the root as built (what an earlier host of this name wrote is dropped).
  rm -rf "$dir/upper" "$dir/work"
  mkdir -p "$dir/upper" "$dir/work" "$dir/fs"

  ns=hybrid-lab$TAG-$name
  veth=hl${TAG}v$index
  address=$NET.$((10 + index))
  ip netns add "$ns"
  record "$name" netns "$ns"
  record "$name" veth "$veth" -
  ip -batch - <<<"link add $veth type veth peer name eth0 netns $ns
link set $veth master $BRIDGE up"
  ip -n "$ns" -batch - <<<"link set lo up
addr add $address/24 dev eth0
link set eth0 up
route add default via $NET.1"
  echo "$address" >"$dir/address"

  mount -t overlay overlay -o "lowerdir=$root,upperdir=$dir/upper,workdir=$dir/work" "$dir/fs"
  record "$name" mount "$dir/fs"
  host_files "$name" "$dir"

  # A cgroup of the host's own in each hierarchy this machine tracks processes in: nspawn with --keep-unit
  # makes its payload and supervisor groups below the cgroup it starts in, and two containers in one
  # group would stop each other's services.
  local cgroups=() mnt
  for mnt in $(cgroup_mounts); do
    mkdir -p "$mnt/hybrid-lab/$ns"
    record "$name" cgroup "$mnt/hybrid-lab/$ns"
    cgroups+=("$mnt/hybrid-lab/$ns")
  done
  : >"$dir/console.log"
  # setsid: a Ctrl-C aimed at whoever ran this does not reach the host; fd 9 (the lab lock) stays here.
  # --register=no, --keep-unit: this machine's PID 1 need not be systemd (no machined, no scope unit).
  # CAP_NET_ADMIN, which nspawn grants only to a network of its own making: a worker's root configures
  # its interfaces (hybrid puts the advertised address on one in tunnel mode).
  (exec 9>&- && for c in "${cgroups[@]}"; do echo "$BASHPID" >"$c/cgroup.procs"; done &&
    exec setsid systemd-nspawn --quiet --boot --register=no --keep-unit --machine="${ns:0:64}" \
    --directory="$dir/fs" --network-namespace-path="/run/netns/$ns" --bind-ro=/usr/bin/node \
    --capability=CAP_NET_ADMIN --console=passive --kill-signal=SIGKILL </dev/null >>"$dir/console.log" 2>&1) &
  holder=$!
  record "$name" pid "$holder" "$(start_time "$holder")" nspawn
  wait_for 30 container_init "$holder" >/dev/null || die "host $name did not boot: $(tail -5 "$dir/console.log")"
  pid1=$(container_init "$holder")
  record "$name" pid "$pid1" "$(start_time "$pid1")" init
  inodes=$(stat -L -c %i "/proc/$pid1/ns/mnt" "/proc/$pid1/ns/net")
  record "$name" mntns "${inodes%$'\n'*}"
  record "$name" netns-inode "${inodes#*$'\n'}"
  # Booted when sshd listens on the host's address.
  wait_for 90 listening "$ns" ||
    die "sshd on $name does not listen after boot: $(tail -5 "$dir/console.log")"
  lock
  write_known_hosts
}

container_init() { # NSPAWN-PID: the container's PID 1 (the process below nspawn that is PID 1 of its own namespace)
  local pid nspid
  for pid in $(descendants "$1"); do
    nspid=$(awk '$1 == "NSpid:" {print $NF}' "/proc/$pid/status" 2>/dev/null) || continue
    [ "$nspid" = 1 ] && echo "$pid" && return 0
  done
  return 1
}

cgroup_mounts() { # the cgroup2 mount and the v1 name=systemd one, where mounted
  local src target type opts rest
  while read -r src target type opts rest; do
    case $type in
    cgroup2) echo "$target" ;;
    cgroup) [[ ,$opts, == *,name=systemd,* ]] && echo "$target" ;;
    esac
  done </proc/self/mounts
  return 0
}

listening() { ip netns exec "$1" ss -Htln 'sport = :22' 2>/dev/null | grep -q .; }

host_files() { # NAME DIR: the host's own name, host key, machine id and root's authorized key (in its overlay)
  local name=$1 fs=$2/fs
  echo "$name" >"$fs/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$name" >"$fs/etc/hosts"
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$fs/etc/ssh/ssh_host_ed25519_key"
  install -d -m 700 "$fs/root/.ssh"
  install -m 600 "$LAB/ssh/id_ed25519.pub" "$fs/root/.ssh/authorized_keys"
  # Where its paths are seen from this machine (test/helpers/lab.ts reads this, as for a workers.sh host).
  local d
  for d in /etc /usr /var /root /home /opt /srv; do printf '%s\t%s\n' "$fs$d" "$d"; done >"$2/mounts"
}

booted_main() {
  [ $# -gt 0 ] || { sed -n '7,9p' "$HERE/init-hosts.sh" | sed 's/^# \{0,1\}//' >&2 && exit 2; }
  [ "$EUID" -eq 0 ] || bad_usage "run as root (debootstrap, namespaces, mounts): sudo $0 $*"
  local verb=$1
  shift
  case $verb in
  root) build_root "${1:-systemd}" ;;
  host-add) host_add_booted "$@" ;;
  *) bad_usage "unknown verb $verb (root, host-add)" ;;
  esac
}

booted_main "$@"

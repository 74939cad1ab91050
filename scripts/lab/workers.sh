#!/usr/bin/env bash
# Lab worker hosts on one machine. A host is a network namespace with a veth on the lab bridge and its own
# address, plus its own mount, UTS and PID namespaces held by a small init (PID 1 inside, no init system):
# /etc/rancher, /var/lib/rancher, /usr/local/bin, /run, /etc/ssh, /etc/systemd/system, /etc/sudoers.d,
# /root, /home, /tmp and the account files are per-host directories under the lab directory, /var/lib is the
# machine's under an overlay whose writes are the host's own (a kubelet's /var/lib/kubelet, the CNI's
# /var/lib/cni: removable directories, not mount points), and OpenSSH's
# `sshd -D` runs there with the host's own host key. Every resource is recorded in LAB/state as it is made
# and removed by that record (never by a name match).
#
#   workers.sh up N           hosts w1..wN at 10.213.0.(10+I) on bridge hlab0 (10.213.0.1); idempotent
#   workers.sh down [--purge] remove every recorded resource (--purge: also keys and host directories)
#   workers.sh exec I CMD…    run CMD as root inside host I (its network, mount, UTS and PID namespaces)
#   workers.sh list           hosts, addresses and what runs
#   workers.sh coordinator    the coordinator's network namespace on the lab bridge (NET.5): outbound only,
#                             new inbound connections dropped; prints its name; idempotent
#
# The lab directory is HYBRID_LAB_DIR, else ~/.local/state/hybrid/lab (the key and known_hosts that
# inventory/lab.yaml names are in its ssh/). The verbs below `list` are the building blocks that
# test/helpers/lab.ts uses for its own labs, each on a subnet 10.213.K.0/24 it claims here; a script of
# its own (a benchmark) does the same: HYBRID_LAB_DIR=$(mktemp -d) and `workers.sh claim $$`, then
# `up N`, … and `down --purge`. A claim whose owner process has ended is taken down by the next claim.
set -euo pipefail

SELF=$(readlink -f "$0")
LAB=${HYBRID_LAB_DIR:-$HOME/.local/state/hybrid/lab}
[[ $LAB == /* ]] || LAB=$PWD/$LAB
CLAIMS=/run/hybrid-lab # one directory per claimed subnet: subnet-K/{owner,lab}
SSHD=/usr/sbin/sshd
# Directories and files each host has of its own (in the host → under LAB/hosts/NAME/fs/).
PRIVATE_DIRS=(/etc/rancher /var/lib/rancher /usr/local/bin /etc/ssh /etc/systemd/system /etc/sudoers.d /root /home /run /tmp)
PRIVATE_FILES=(/etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/hosts /etc/hostname)
# Directories the host sees as the machine's, its own writes kept apart (an overlay, upper dir LAB/hosts/NAME/fs/…).
OVERLAY_DIRS=(/var/lib)

die() { # failed: exit 1
  echo "workers.sh: $*" >&2
  exit 1
}
bad_usage() { # bad usage: exit 2
  echo "workers.sh: $*" >&2
  exit 2
}
usage() {
  sed -n '9,15p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---- the record: one line per resource, "HOST KIND ID [START ROLE]"; HOST is - for the lab's own.

# Whole-lab verbs (up, down, claim) hold the lab's lock throughout; verbs on one host (which tests run for
# several hosts at once) take it only to rewrite the record. Appending a line needs no lock.
LOCKED=no
lock() {
  mkdir -p "$LAB"
  exec 9>"$LAB/.lock"
  flock 9
  LOCKED=yes
}
# Forks are slow on a loaded machine, so these helpers are plain bash (no awk, no grep).
record() { printf '%s\n' "$*" >>"$LAB/state"; }
records() { # HOST [KIND]: the matching lines
  local line h k rest
  [ -f "$LAB/state" ] || return 0
  while read -r line; do
    read -r h k rest <<<"$line"
    [ "$h" = "$1" ] && { [ -z "${2:-}" ] || [ "$k" = "$2" ]; } && echo "$line"
  done <"$LAB/state"
  return 0
}
forget() { # HOST KIND ID: drop that line
  if [ "$LOCKED" = no ]; then
    lock
    forget "$@"
    exec 9>&-
    LOCKED=no
    return
  fi
  local line h k i rest kept=()
  while read -r line; do
    read -r h k i rest <<<"$line"
    [ "$h $k $i" = "$1 $2 $3" ] || kept+=("$line")
  done <"$LAB/state"
  if [ ${#kept[@]} -gt 0 ]; then printf '%s\n' "${kept[@]}" >"$LAB/state.tmp"; else : >"$LAB/state.tmp"; fi
  mv "$LAB/state.tmp" "$LAB/state"
}
proc_stat() { # PID: sets P_STATE and P_START (its start time in clock ticks), or fails when it is gone
  local s
  P_STATE='' P_START=''
  { read -r s </proc/"$1"/stat; } 2>/dev/null || return 1
  s=${s##*) }
  set -f
  # shellcheck disable=SC2086
  set -- $s
  set +f
  P_STATE=$1 P_START=${20:-}
}
start_time() { proc_stat "$1" && echo "$P_START"; }
alive() { # PID START: running (not a zombie) and the same process that was recorded, never a reused pid
  proc_stat "$1" && [ "$P_START" = "$2" ] && [ "$P_STATE" != Z ]
}
pid_of() { # HOST ROLE: the recorded pid of that role, if alive
  local h k pid start role
  while read -r h k pid start role; do
    [ "$role" = "$2" ] && alive "$pid" "$start" && {
      echo "$pid"
      return 0
    }
  done < <(records "$1" pid)
  return 1
}
gone() { ! alive "$1" "$2"; }
kill_recorded() { # HOST PID START SIGNAL: signal it, wait until it is gone (else SIGKILL), drop its line
  if alive "$2" "$3"; then
    kill "-$4" "$2" 2>/dev/null || true
    wait_for 5 gone "$2" "$3" || kill -KILL "$2" 2>/dev/null || true
    if ! wait_for 30 gone "$2" "$3"; then
      echo "workers.sh: process $2 of $1 does not end; it stays recorded for the next down" >&2
      return 0
    fi
  fi
  forget "$1" pid "$2"
}
children() { # PID: its children, space-separated (the lab's processes are single-threaded)
  local list=''
  { read -r list </proc/"$1"/task/"$1"/children; } 2>/dev/null || true
  echo "$list"
}
has_children() { local list=''; { read -r list </proc/"$1"/task/"$1"/children; } 2>/dev/null; [ -n "$list" ]; }
descendants() { # PID: every process below it
  local child
  for child in $(children "$1"); do
    echo "$child"
    descendants "$child"
  done
}
wait_for() { # SECONDS CMD…: poll until CMD succeeds; generous, as a loaded machine starts processes slowly
  local until=$((${EPOCHREALTIME//[!0-9]/} + $1 * 1000000))
  shift
  until "$@"; do
    [ "${EPOCHREALTIME//[!0-9]/}" -lt "$until" ] || return 1
    sleep 0.05
  done
}

# ---- the lab: its subnet, bridge and key

load_lab() {
  [ -f "$LAB/lab.env" ] || die "no lab at $LAB (run: workers.sh up N)"
  # shellcheck source=/dev/null
  . "$LAB/lab.env"
}

init_lab() { # NET TAG: write lab.env once, make the key, bring the bridge up
  if [ ! -f "$LAB/lab.env" ]; then
    mkdir -p "$LAB"
    printf 'NET=%s\nTAG=%s\nBRIDGE=hlab%s\n' "$1" "$2" "$2" >"$LAB/lab.env"
  fi
  load_lab
  mkdir -p "$LAB/ssh" "$LAB/hosts"
  chmod 700 "$LAB/ssh"
  [ -f "$LAB/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hybrid-lab -f "$LAB/ssh/id_ed25519"
  touch "$LAB/ssh/known_hosts"
  if [ -n "$(records - bridge)" ] && ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    forget - bridge "$BRIDGE" # recorded before the machine restarted: make it again
  fi
  if [ -z "$(records - bridge)" ]; then
    ip link show "$BRIDGE" >/dev/null 2>&1 && die "a bridge $BRIDGE exists that this lab did not make; remove it or use another lab"
    ip link add "$BRIDGE" type bridge
    record - bridge "$BRIDGE"
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
}

reclaim() { # CLAIM-DIR: a claim whose owner died is taken over, its lab taken down by its own record
  local dir=$1 owner start stale
  { read -r owner start <"$dir/owner"; } 2>/dev/null || return 0 # being written: its owner is alive
  alive "$owner" "$start" && return 0
  stale=$CLAIMS/stale-${dir##*-}-$$
  mv "$dir" "$stale" 2>/dev/null || return 0 # another claim took it over first
  if [ -f "$stale/lab" ] && [ -f "$(cat "$stale/lab")/state" ]; then
    echo "workers.sh: taking down $(cat "$stale/lab"), whose owner $owner has ended" >&2
    HYBRID_LAB_DIR=$(cat "$stale/lab") "$SELF" down --purge >&2 || true
  fi
  rm -rf "$stale"
}

claim_subnet() { # OWNER-PID [K]: claim 10.213.K.0/24, else the next free K (1..254; 0 is the user's lab)
  local k dir last=0
  mkdir -p "$CLAIMS"
  for dir in "$CLAIMS"/subnet-*; do [ ! -d "$dir" ] || reclaim "$dir"; done
  # Round the range from the last claim, so a subnet just given back is not at once another lab's: a late
  # packet or check aimed at the old lab never meets a new one.
  { read -r last <"$CLAIMS/last"; } 2>/dev/null || true
  [[ $last =~ ^[0-9]+$ ]] && [ "$last" -le 254 ] || last=0
  for k in ${2:-$(seq $((last + 1)) 254) $(seq 1 "$last")}; do
    dir=$CLAIMS/subnet-$k
    mkdir "$dir" 2>/dev/null || continue
    echo "$1 $(start_time "$1")" >"$dir/owner"
    echo "$LAB" >"$dir/lab"
    record - claim "$dir"
    echo "$k" >"$CLAIMS/last.$$" && mv "$CLAIMS/last.$$" "$CLAIMS/last"
    echo "$k"
    return 0
  done
  die "${2:+subnet 10.213.$2.0/24 is claimed by a running lab}${2:-every lab subnet 10.213.1-254.0/24 is claimed}"
}

# ---- a host

in_host() { # NAME CMD…: run CMD in the host's namespaces
  local init
  init=$(pid_of "$1" init) || die "host $1 is not up"
  nsenter --target "$init" --net --mount --uts --pid --wd=/ -- "${@:2}"
}

write_host_files() { # NAME REFUSE-KEY SSHD-LINES-FILE: the host's own files (kept across down/up)
  local name=$1 dir d f
  dir=$LAB/hosts/$name
  mkdir -p "${PRIVATE_DIRS[@]/#/$dir/fs}" "$dir/fs/run/sshd" "$dir/fs/etc/ssh/authorized_keys" "$dir/fs/etc/ssh/sshd_config.d"
  chmod 1777 "$dir/fs/tmp"
  chmod 700 "$dir/fs/root"
  if [ ! -f "$dir/fs/etc/passwd" ]; then
    # The machine's accounts without its secrets: shadow entries are "*" (no password; keys only).
    cp /etc/passwd /etc/group "$dir/fs/etc/"
    awk -F: '{print $1 ":*:20000:0:99999:7:::"}' /etc/passwd >"$dir/fs/etc/shadow"
    awk -F: '{print $1 ":!::"}' /etc/group >"$dir/fs/etc/gshadow"
    chmod 640 "$dir/fs/etc/shadow" "$dir/fs/etc/gshadow"
    echo "$name" >"$dir/fs/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$name" >"$dir/fs/etc/hosts"
  fi
  [ -f "$dir/fs/etc/ssh/moduli" ] || cp /etc/ssh/moduli /etc/ssh/ssh_config "$dir/fs/etc/ssh/" 2>/dev/null || true
  [ -f "$dir/fs/etc/ssh/ssh_host_ed25519_key" ] || new_host_key "$name"
  if [ "$2" = yes ]; then
    : >"$dir/fs/etc/ssh/authorized_keys/root"
  else
    cp "$LAB/ssh/id_ed25519.pub" "$dir/fs/etc/ssh/authorized_keys/root"
  fi
  {
    echo "# lab host $name: sshd_config (the lab's base; drop-ins in sshd_config.d come first, as on Debian)"
    echo 'Include /etc/ssh/sshd_config.d/*.conf'
    cat "$3"
    echo 'Port 22'
    echo 'HostKey /etc/ssh/ssh_host_ed25519_key'
    echo 'PidFile /run/sshd.pid'
    echo 'AuthorizedKeysFile /etc/ssh/authorized_keys/%u'
    echo 'PermitRootLogin prohibit-password'
    echo 'PasswordAuthentication no'
    echo 'KbdInteractiveAuthentication no'
    echo 'UsePAM no'
    echo 'Subsystem sftp internal-sftp'
  } >"$dir/fs/etc/ssh/sshd_config"
  # What the host's init binds, in order (source, then the path inside the host; a third field: an overlay).
  {
    for d in "${OVERLAY_DIRS[@]}"; do
      [[ $LAB/ != "$d"/* ]] || die "the lab directory $LAB cannot lie under $d (the hosts' overlay of it)"
      mkdir -p "$dir/fs$d" "$dir/overlay-work$d"
      printf '%s\t%s\toverlay\n' "$dir/fs$d" "$d"
    done
    # The one that holds the lab directory (/root, /home, /tmp…) comes last: once it is bound over,
    # the sources below it are hidden.
    local last=''
    for f in "${PRIVATE_FILES[@]}" "${PRIVATE_DIRS[@]}"; do
      if [[ $LAB/ == "$f"/* ]]; then last=$f; else printf '%s\t%s\n' "$dir/fs$f" "$f"; fi
    done
    [ -z "$last" ] || printf '%s\t%s\n' "$dir/fs$last" "$last"
  } >"$dir/mounts"
}

new_host_key() { # NAME: a fresh ed25519 host key
  local key
  key=$LAB/hosts/$1/fs/etc/ssh/ssh_host_ed25519_key
  rm -f "$key" "$key.pub"
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$key"
}

host_add() { # NAME INDEX [--bastion | --behind BASTION] [--no-sshd] [--link-down] [--refuse-key] [--sshd-line LINE]…
  local name=$1 index=$2 role=plain behind='' sshd=yes link=up refuse=no dir ns veth address gw lines
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
    --bastion) role=bastion ;;
    --behind) behind=$2 role=behind && shift ;;
    --no-sshd) sshd=no ;;
    --link-down) link=down ;;
    --refuse-key) refuse=yes ;;
    --sshd-line) lines+="$2"$'\n' && shift ;;
    *) die "host-add: unknown option $1" ;;
    esac
    shift
  done
  [[ $name =~ ^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$ ]] || die "host-add: '$name' is not a host name (a-z, 0-9, '-', starting with a letter)"
  load_lab
  [ -z "$(records "$name" netns)" ] || die "host-add: $name exists"
  dir=$LAB/hosts/$name
  mkdir -p "$dir"
  printf '%s' "${lines:-}" >"$dir/sshd-lines"
  write_host_files "$name" "$refuse" "$dir/sshd-lines"

  ns=hybrid-lab$TAG-$name
  veth=hl${TAG}v$index
  case $role in
  plain) address=$NET.$((10 + index)) gw=$NET.1 plen=24 ;;
  bastion) address=$NET.2 gw=$NET.1 plen=25 ;;
  behind) address=$NET.$((138 + index)) gw=$NET.129 plen=25 ;;
  esac
  ip netns add "$ns"
  record "$name" netns "$ns"
  # Behind the bastion: on a bridge inside the bastion's namespace, which the machine has no link to.
  # (ip -batch: one process per namespace, as forks are slow on a loaded machine.)
  local side=- bridge=$BRIDGE on_side=(ip)
  [ "$role" = behind ] && side=hybrid-lab$TAG-$behind bridge=inner on_side=(ip -n "hybrid-lab$TAG-$behind")
  record "$name" veth "$veth" "$side"
  "${on_side[@]}" -batch - <<<"link add $veth type veth peer name eth0 netns $ns
link set $veth master $bridge up"
  {
    echo "link set lo up"
    echo "addr add $address/$plen dev eth0"
    echo "link set eth0 up"
    echo "route add default via $gw"
    if [ "$role" = bastion ]; then
      echo "link add inner type bridge"
      echo "addr add $NET.129/25 dev inner"
      echo "link set inner up"
    fi
  } | ip -n "$ns" -batch -
  echo "$address" >"$dir/address"

  start_init "$name" "$ns"
  [ "$sshd" = no ] || sshd_start "$name"
  # A host that is down: its address exists, but its link does not pass packets (dialling it fails).
  [ "$link" = up ] || ip -n "$ns" link set eth0 down
  write_known_hosts
}

start_init() { # NAME NETNS: the host's PID 1 in new mount, UTS and PID namespaces inside its netns
  local name=$1 dir holder init i
  dir=$LAB/hosts/$name
  : >"$dir/init.log"
  # setsid: a Ctrl-C aimed at whoever ran this does not reach the host; fd 9 (the lab lock) stays here.
  (exec 9>&- && exec setsid nsenter --net="/run/netns/$2" -- unshare --mount --uts --pid --fork \
    --propagation private --mount-proc -- bash "$SELF" _init "$name" "$dir" </dev/null >>"$dir/init.log" 2>&1) &
  holder=$!
  record "$name" pid "$holder" "$(start_time "$holder")" holder
  wait_for 30 is_ready "$dir/init.log" || die "host $name did not start: $(cat "$dir/init.log")"
  init=$(children "$holder")
  record "$name" pid "$init" "$(start_time "$init")" init
  local inodes
  inodes=$(stat -L -c %i "/proc/$init/ns/mnt" "/proc/$init/ns/net")
  record "$name" mntns "${inodes%$'\n'*}"
  record "$name" netns-inode "${inodes#*$'\n'}"
}

is_ready() { local line; while read -r line; do [ "$line" = ready ] && return 0; done <"$1"; return 1; }

init_main() { # NAME DIR: runs as PID 1 of a host: bind its own files, then reap children forever
  local src target kind
  while IFS=$'\t' read -r src target kind; do
    if [ "$kind" = overlay ]; then
      mount -t overlay overlay -o "lowerdir=$target,upperdir=$src,workdir=$2/overlay-work$target" "$target"
      continue
    fi
    # A mount point the machine lacks (/etc/rancher, /var/lib/rancher) is made as an empty directory and
    # left there: a lab elsewhere on the machine may be using it.
    [ -e "$target" ] || mkdir -p "$target"
    mount --bind "$src" "$target"
  done <"$2/mounts"
  mount -t sysfs sysfs /sys # the host's own interfaces under /sys/class/net
  hostname "$1"
  echo ready
  trap '' TERM INT HUP
  while :; do
    sleep 3600 &
    wait $! || true
  done
}

sshd_start() { # NAME: sshd -D inside the host, listening on :22 before this returns
  local name=$1 dir init launcher sshd
  dir=$LAB/hosts/$name
  pid_of "$name" sshd >/dev/null && return 0
  init=$(pid_of "$name" init) || die "host $name is not up"
  rm -f "$dir/fs/run/sshd.pid"
  (exec 9>&- && exec setsid nsenter --target "$init" --net --mount --uts --pid --wd=/ -- \
    "$SSHD" -D -e -f /etc/ssh/sshd_config </dev/null >>"$dir/sshd.log" 2>&1) &
  launcher=$!
  record "$name" pid "$launcher" "$(start_time "$launcher")" launcher
  wait_for 30 has_children "$launcher" || die "sshd on $name did not start: $(tail -3 "$dir/sshd.log")"
  sshd=$(children "$launcher")
  record "$name" pid "$sshd" "$(start_time "$sshd")" sshd
  # sshd writes its pid file once its listening sockets are bound.
  wait_for 30 test -s "$dir/fs/run/sshd.pid" ||
    die "sshd on $name is not listening: $(tail -3 "$dir/sshd.log")"
}

sshd_stop() { # NAME [SIGNAL]: sshd and every session it serves (connections are cut), as when it dies
  local name=$1 signal=${2:-TERM} sshd start pid h k role
  sshd=$(pid_of "$name" sshd) || return 0
  start=$(start_time "$sshd")
  local sessions
  sessions=$(descendants "$sshd")
  for pid in $sessions; do kill "-$signal" "$pid" 2>/dev/null || true; done
  kill_recorded "$name" "$sshd" "$start" "$signal" # SIGKILL after 5 s if the signal did not end it
  for pid in $sessions; do kill -KILL "$pid" 2>/dev/null || true; done
  while read -r h k pid start role; do
    [ "$role" = launcher ] && kill_recorded "$name" "$pid" "$start" KILL
  done < <(records "$name" pid)
}

host_user() { # NAME USER [--sudoers SPEC] [--password-stdin] [--refuse-key]: an account with the lab key
  local name=$1 user=$2 sudoers='' password=no refuse=no dir uid hash
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
    --sudoers) sudoers=$2 && shift ;;
    --password-stdin) password=yes ;;
    --refuse-key) refuse=yes ;;
    *) die "host-user: unknown option $1" ;;
    esac
    shift
  done
  [[ $user =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die "host-user: '$user' is not a user name"
  load_lab
  dir=$LAB/hosts/$name/fs
  [ -f "$dir/etc/passwd" ] || die "host-user: no host $name"
  if ! grep -q "^$user:" "$dir/etc/passwd"; then
    uid=$(awk -F: 'BEGIN {n = 2000} $3 >= n && $3 < 60000 {n = $3 + 1} END {print n}' "$dir/etc/passwd")
    echo "$user:x:$uid:$uid::/home/$user:/bin/bash" >>"$dir/etc/passwd"
    echo "$user:x:$uid:" >>"$dir/etc/group"
    echo "$user:*:20000:0:99999:7:::" >>"$dir/etc/shadow"
    echo "$user:!::" >>"$dir/etc/gshadow"
    mkdir -p "$dir/home/$user"
    chown "$uid:$uid" "$dir/home/$user"
  fi
  if [ "$password" = yes ]; then
    # The password comes on stdin, never in argv; only its hash is written.
    hash=$(openssl passwd -6 -stdin)
    awk -F: -v OFS=: -v u="$user" -v h="$hash" '$1 == u {$2 = h} {print}' "$dir/etc/shadow" >"$dir/etc/shadow.tmp"
    chmod 640 "$dir/etc/shadow.tmp"
    cat "$dir/etc/shadow.tmp" >"$dir/etc/shadow" # in place: the file is bound into the host
    rm "$dir/etc/shadow.tmp"
  fi
  if [ -n "$sudoers" ]; then
    (umask 337 && echo "$user $sudoers" >"$dir/etc/sudoers.d/lab-$user")
  fi
  if [ "$refuse" = yes ]; then
    : >"$dir/etc/ssh/authorized_keys/$user"
  else
    cp "$LAB/ssh/id_ed25519.pub" "$dir/etc/ssh/authorized_keys/$user"
  fi
}

rmdir_tree() { # DIR: remove it and the directories below it (a cgroup's), deepest first; fails if one stays
  [ -d "$1" ] || return 0
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
  [ ! -d "$1" ]
}

host_remove() { # NAME: every resource recorded for it, newest first
  local name=$1 h k id extra role
  while read -r h k id extra role; do
    case $k in
    pid) kill_recorded "$name" "$id" "$extra" KILL ;; # init's death ends every process in the host
    veth)
      if [ "$extra" = - ]; then ip link del "$id" 2>/dev/null || true; else ip -n "$extra" link del "$id" 2>/dev/null || true; fi
      forget "$name" veth "$id"
      ;;
    netns)
      ip netns del "$id" 2>/dev/null || true
      forget "$name" netns "$id"
      ;;
    cgroup) # a booted host's cgroup (init-hosts.sh) and those its init made below, once its processes are gone
      wait_for 5 rmdir_tree "$id" || echo "workers.sh: cgroup $id of $name is not empty; it stays" >&2
      forget "$name" cgroup "$id"
      ;;
    mount) # a booted host's root (init-hosts.sh), once nothing runs on it
      umount "$id" 2>/dev/null || umount -l "$id" 2>/dev/null || true
      forget "$name" mount "$id"
      ;;
    dnat)
      iptables -w -t nat -D OUTPUT -d "$id/32" -p tcp --dport 22 -j DNAT --to-destination "$extra:22" 2>/dev/null || true
      rm -f "$LAB/hosts/$name/forwarded"
      forget "$name" dnat "$id"
      ;;
    *) forget "$name" "$k" "$id" ;;
    esac
  done < <(records "$name" | tac)
}

host_forward() { # NAME: a forwarded address for the host's sshd, printed: an unused address of the lab's
  # subnet (.200 up) that this machine DNATs to the host's :22, as a NAT or port forward in front of a
  # real worker would. Only connections made from this machine (nat OUTPUT) are forwarded; the host itself
  # never has the address. Recorded as "NAME dnat ADDRESS TARGET", removed with the host.
  local name=$1 dir target n=200 h k id rest used
  load_lab
  dir=$LAB/hosts/$name
  [ -n "$(records "$name" netns)" ] && [ -f "$dir/address" ] || die "host-forward: no host $name"
  target=$(cat "$dir/address")
  lock # the record decides which address is free
  used=" "
  while read -r h k id rest; do [ "$k" = dnat ] && used+="$id "; done <"$LAB/state"
  while [[ $used == *" $NET.$n "* ]]; do n=$((n + 1)); done
  [ "$n" -le 254 ] || die "host-forward: no unused address left in $NET.200-254"
  record "$name" dnat "$NET.$n" "$target"
  iptables -w -t nat -A OUTPUT -d "$NET.$n/32" -p tcp --dport 22 -j DNAT --to-destination "$target:22"
  echo "$NET.$n" >"$dir/forwarded"
  write_known_hosts
  echo "$NET.$n"
}

# ---- the coordinator's namespace: where the sandbox that runs `hybrid up` gets its network

coordinator() { # the namespace's name; made once (recorded like a host's, so down removes it)
  local name=coordinator ns veth dir
  load_lab
  ns=hybrid-lab$TAG-$name
  if [ -n "$(records "$name" netns)" ]; then
    ip netns pids "$ns" >/dev/null 2>&1 && echo "$ns" && return 0
    host_remove "$name" # recorded before the machine restarted: make it again
  fi
  veth=hl${TAG}c
  dir=$LAB/hosts/$name
  mkdir -p "$dir"
  ip netns add "$ns"
  record "$name" netns "$ns"
  record "$name" veth "$veth" -
  ip -batch - <<<"link add $veth type veth peer name eth0 netns $ns
link set $veth master $BRIDGE up"
  ip -n "$ns" -batch - <<<"link set lo up
addr add $NET.5/24 dev eth0
link set eth0 up
route add default via $NET.1"
  # Outbound only, as a sandbox that accepts no inbound connections: what arrives on eth0 must belong
  # to a connection made from inside (runsc puts its sandbox behind NAT in a namespace within this one).
  ip netns exec "$ns" iptables -w -A INPUT -i eth0 -m conntrack --ctstate NEW -j DROP
  ip netns exec "$ns" iptables -w -A FORWARD -i eth0 -m conntrack --ctstate NEW -j DROP
  echo "$NET.5" >"$dir/address"
  echo "$ns"
}

write_known_hosts() { # LAB/ssh/known_hosts: every host's address and key (temp, then rename)
  local dir name
  {
    for dir in "$LAB"/hosts/*/; do
      name=$(basename "$dir")
      [ -n "$(records "$name" netns)" ] && [ -f "$dir/address" ] && [ -f "$dir/fs/etc/ssh/ssh_host_ed25519_key.pub" ] || continue
      echo "$(cat "$dir/address") $(cut -d' ' -f1,2 "$dir/fs/etc/ssh/ssh_host_ed25519_key.pub")"
      [ ! -f "$dir/forwarded" ] || echo "$(cat "$dir/forwarded") $(cut -d' ' -f1,2 "$dir/fs/etc/ssh/ssh_host_ed25519_key.pub")"
    done
  } >"$LAB/ssh/known_hosts.$BASHPID"
  mv "$LAB/ssh/known_hosts.$BASHPID" "$LAB/ssh/known_hosts"
}

lab_hosts() { # every host with a recorded netns
  local h k rest
  [ -f "$LAB/state" ] || return 0
  while read -r h k rest; do [ "$k" = netns ] && echo "$h"; done <"$LAB/state"
  return 0
}

lab_down() { # [--purge]
  local h k id name claimed=
  for name in $(lab_hosts); do host_remove "$name"; done
  while read -r h k id; do
    case $k in
    bridge) ip link del "$id" 2>/dev/null || true ;;
    claim)
      claimed=$id
      [ "$(cat "$id/lab" 2>/dev/null)" = "$LAB" ] && rm -rf "$id"
      ;;
    esac
    forget - "$k" "$id"
  done < <(records - | tac)
  [ -s "$LAB/state" ] || rm -f "$LAB/state"
  if [ "${1:-}" = --purge ]; then
    rm -rf "$LAB/hosts" "$LAB/ssh" "$LAB/lab.env" "$LAB/.lock"
  elif [ -n "$claimed" ]; then
    rm -f "$LAB/lab.env" # its subnet is no longer this lab's
  else
    [ ! -f "$LAB/ssh/known_hosts" ] || : >"$LAB/ssh/known_hosts"
  fi
}

# ---- the user's verbs

up() { # N: hosts w1..wN, idempotent; hosts wI beyond N are removed
  local n=$1 i name
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 100 ] || bad_usage "up: N must be 1..100, not '$n'"
  lock
  init_lab 10.213.0 0
  for name in $(lab_hosts); do
    if [[ $name =~ ^w([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt "$n" ]; then host_remove "$name"; fi
  done
  local making=() failed=0 pid
  for i in $(seq "$n"); do
    name=w$i
    if [ -n "$(records "$name" netns)" ]; then
      if pid_of "$name" init >/dev/null; then
        sshd_start "$name"
        continue
      fi
      host_remove "$name" # half there (the machine rebooted, or its init was killed): make it again
    fi
    host_add "$name" "$i" &
    making+=($!)
  done
  # New hosts are made side by side; each one's failure is said by die() in its own words.
  for pid in "${making[@]}"; do wait "$pid" || failed=1; done
  write_known_hosts
  [ "$failed" = 0 ] || die "up: not every host came up; run up again, or down to remove what was made"
  list
}

list() {
  local name dir
  load_lab
  for name in $(lab_hosts | sort -V); do
    dir=$LAB/hosts/$name
    printf '%-8s %-15s init %-8s sshd %s\n' "$name" "$(cat "$dir/address")" "$(pid_of "$name" init || echo -)" "$(pid_of "$name" sshd || echo -)"
  done
  echo "key: $LAB/ssh/id_ed25519  known_hosts: $LAB/ssh/known_hosts"
}

exec_in() { # I|NAME CMD…
  local name=$1
  [[ $name =~ ^[0-9]+$ ]] && name=w$name
  shift
  [ $# -gt 0 ] || usage
  load_lab
  [ -n "$(records "$name" netns)" ] || die "no host $name in $LAB (workers.sh list)"
  in_host "$name" "$@"
}

main() {
  [ $# -gt 0 ] || usage
  local verb=$1
  shift
  case $verb in
  up | down | exec | host-add | host-user | host-forward | host-remove | sshd-start | sshd-stop | host-key | claim | coordinator)
    [ "$EUID" -eq 0 ] || bad_usage "run as root (namespaces, mounts, links): sudo $SELF $verb $*"
    ;;
  esac
  case $verb in
  up) [ $# -eq 1 ] || usage && up "$1" ;;
  down) lock && lab_down "$@" ;;
  exec) exec_in "$@" ;;
  list) list ;;
  coordinator) lock && coordinator ;;
  # Building blocks for test labs (test/helpers/lab.ts), each on LAB=HYBRID_LAB_DIR.
  claim) lock && k=$(claim_subnet "$@") && init_lab "10.213.$k" "$k" && echo "$NET" ;; # OWNER-PID [K]
  host-add) host_add "$@" ;;
  host-user) host_user "$@" ;;
  host-forward) host_forward "$1" ;;
  host-remove) lock && host_remove "$1" && write_known_hosts ;;
  known-hosts) lock && write_known_hosts ;;
  sshd-start) sshd_start "$1" ;;
  sshd-stop) sshd_stop "$@" ;;
  host-key) new_host_key "$1" && if pid_of "$1" sshd >/dev/null; then sshd_stop "$1" && sshd_start "$1"; fi ;;
  _init) init_main "$@" ;;
  *) usage ;;
  esac
}

# init-hosts.sh sources this file for its functions (HYBRID_LAB_LIBRARY=yes), without running a verb.
[ "${HYBRID_LAB_LIBRARY:-}" = yes ] || main "$@"

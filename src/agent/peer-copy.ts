import {randomBytes} from 'node:crypto'

import {registerSecret} from '../log/redact.js'
import type {Host} from '../remote/host.js'
import type {HeldCommand} from '../remote/held-command.js'
import {fetchK3sOnWorker} from './binary-fetch.js'

/**
 * The k3s binary from one worker to another over their own network (spec.k3s.distribute: peers;
 * docs/architecture.md, "Distributing the k3s binary"). Both ends are small Perl programs: perl-base is
 * Essential on Debian and Ubuntu (IO::Socket::IP and IO::Select are in it), where Python, curl and
 * netcat may be missing. The server listens on an ephemeral port, prints it, and for each connection
 * that first sends the run's one-time token streams the file; it reads the token, then waits on its
 * standard input, and ends (its children with it) when that input ends, which is when hybrid stops it
 * or its SSH connection closes, or at its deadline. The token travels on standard input only.
 */

const SERVER = String.raw`
use strict; use warnings; use IO::Socket::IP; use IO::Select; use POSIX ':sys_wait_h';
my ($bind, $file, $limit) = @ARGV;
my $token = <STDIN>; defined $token or die "no token\n"; chomp $token;
length($token) >= 32 or die "no token\n";
open(my $probe, '<', $file) or die "cannot read $file: $!\n"; close $probe;
my $srv = IO::Socket::IP->new(LocalHost => $bind, LocalPort => 0, Listen => 64, ReuseAddr => 1)
  or die "cannot listen on $bind: $@\n";
$| = 1; print $srv->sockport, "\n";
my %kids; my $end = time + $limit; my $sel = IO::Select->new($srv, \*STDIN);
LOOP: while (time < $end) {
  for my $fh ($sel->can_read(1)) {
    if ($fh == $srv) {
      my $c = $srv->accept or next;
      my $pid = fork;
      if (!defined $pid) { close $c; next }
      if ($pid) { $kids{$pid} = 1; close $c; next }
      close $srv; alarm $limit;
      my $line = ''; while (length($line) < 256 && $line !~ /\n/) { sysread($c, $line, 256, length $line) or last }
      chomp $line; POSIX::_exit(1) unless $line eq $token;
      open(my $in, '<', $file) or POSIX::_exit(1); binmode $in;
      while (my $n = sysread($in, my $buf, 1 << 20)) {
        my $off = 0;
        while ($off < $n) { my $w = syswrite($c, $buf, $n - $off, $off); POSIX::_exit(1) unless $w; $off += $w }
      }
      POSIX::_exit(0);
    } else {
      my $n = sysread(STDIN, my $buf, 512); last LOOP unless $n;
    }
  }
  while ((my $p = waitpid(-1, WNOHANG)) > 0) { delete $kids{$p} }
}
kill 'KILL', keys %kids; waitpid($_, 0) for keys %kids;
`

const CLIENT = String.raw`
use strict; use warnings; use IO::Socket::IP;
my ($addr, $port, $limit, $out) = @ARGV;
alarm $limit;
my $token = <STDIN>; defined $token or die "no token\n"; chomp $token;
my $s = IO::Socket::IP->new(PeerHost => $addr, PeerPort => $port, Timeout => 10)
  or die "cannot connect to $addr port $port: $@\n";
syswrite($s, "$token\n") or die "cannot send to $addr: $!\n";
umask 077; open(my $fh, '>', $out) or die "cannot write $out: $!\n"; binmode $fh;
my $total = 0;
while (1) {
  my $n = sysread($s, my $buf, 1 << 20); defined $n or die "reading from $addr: $!\n"; last unless $n;
  print $fh $buf or die "cannot write $out: $!\n"; $total += $n;
}
close $fh or die "cannot write $out: $!\n";
$total > 0 or die "$addr sent nothing (refused the token, or has no file)\n";
`

/** Where a peer serves the binary for this run. */
export interface PeerSource {
  /** The serving worker's name, for messages. */
  readonly peer: string
  readonly address: string
  readonly port: number
  /** The run's one-time secret (registered, never logged). */
  readonly token: string
}

export interface PeerServer {
  readonly source: PeerSource
  stop(): Promise<void>
}

/** A host that can keep a command running (an SSH worker). */
export interface HoldingHost extends Host {
  hold(argv: readonly string[], stdin: string): Promise<HeldCommand>
}

/**
 * Serve `file` from `host` on `bind` (its address, or a wildcard) for at most `limitSeconds`; peers dial
 * `address`. Resolves once the server listens.
 */
export async function startPeerServer(
  host: HoldingHost,
  options: {file: string; bind: string; address: string; limitSeconds: number},
): Promise<PeerServer> {
  const token = randomBytes(32).toString('hex')
  registerSecret(token)
  const held = await host.hold(
    ['perl', '-e', SERVER, options.bind, options.file, String(options.limitSeconds)],
    `${token}\n`,
  )
  try {
    const port = Number(await held.firstLine)
    if (!Number.isInteger(port) || port <= 0) throw new Error(`${host.name}: the k3s peer server printed no port`)
    let stopping: Promise<void> | undefined
    return {source: {peer: host.name, address: options.address, port, token}, stop: () => (stopping ??= held.stop())}
  } catch (error) {
    await held.stop()
    throw error
  }
}

/** Fetch the binary from a peer into place on `host`, checked against `sha256` before the rename. */
export function fetchFromPeer(host: Host, source: PeerSource, sha256: string, limitSeconds: number): Promise<void> {
  return fetchK3sOnWorker(
    host,
    {
      argv: ['perl', '-e', CLIENT, source.address, String(source.port), String(limitSeconds)],
      stdin: `${source.token}\n`,
      timeoutSeconds: limitSeconds + 10,
    },
    sha256,
    `from peer ${source.peer} (${source.address})`,
  )
}

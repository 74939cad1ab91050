import {strict as assert} from 'node:assert'

import {
  addressFact,
  k3sArch,
  parseOsRelease,
  parseProcNetTcp,
  portFree,
  sshdFromConfig,
} from '../../src/remote/facts.js'

describe('worker facts parsing', () => {
  it('maps uname -m to the names of k3s release assets', () => {
    assert.equal(k3sArch('x86_64'), 'amd64')
    assert.equal(k3sArch('aarch64'), 'arm64')
    assert.equal(k3sArch('armv7l'), 'arm')
    assert.equal(k3sArch('riscv64'), null)
  })

  it('reads /etc/os-release, quoted or not', () => {
    const os = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    assert.deepEqual(os, {id: 'debian', version: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)'})
    assert.equal(parseOsRelease(''), null)
  })

  it('finds listeners in /proc/net/tcp and tcp6 and judges ports by address', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1A0A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0100007F:1F90 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '   0: 00000000000000000000000000000000:2802 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1',
    ].join('\n')
    const listeners = parseProcNetTcp(text)
    assert.deepEqual(listeners, [
      {address: '127.0.0.1', port: 6666},
      {address: '0.0.0.0', port: 22},
      {address: '::', port: 10242},
    ])
    assert.equal(portFree(listeners, 6666, '127.0.0.1'), false)
    assert.equal(
      portFree(listeners, 6666, '100.64.255.1'),
      true,
      'a listener on loopback does not hold another address',
    )
    assert.equal(portFree(listeners, 22, '100.64.255.1'), false, 'a wildcard listener holds every address')
    assert.equal(portFree(listeners, 8080, '127.0.0.1'), true, 'an established connection is no listener')
  })

  it('reads GatewayPorts and AllowTcpForwarding as sshd does: first value wins, Match blocks ignored', () => {
    const text = [
      '#@file /etc/ssh/sshd_config.d/hybrid.conf',
      'GatewayPorts clientspecified',
      '#@file /etc/ssh/sshd_config',
      'GatewayPorts no',
      'Match User bob',
      '  AllowTcpForwarding no',
    ].join('\n')
    assert.deepEqual(sshdFromConfig(text), {
      gatewayPorts: 'clientspecified',
      allowTcpForwarding: 'yes',
      source: 'config files',
    })
    assert.deepEqual(sshdFromConfig('#@file /etc/ssh/sshd_config\n# GatewayPorts yes\n'), {
      gatewayPorts: 'no',
      allowTcpForwarding: 'yes',
      source: 'config files',
    })
    assert.equal(sshdFromConfig('').source, 'unknown')
  })

  it('tells hybrid’s own advertised address from one that belongs to another interface', () => {
    const ip = [
      '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
      '2: eth0@if9    inet 100.64.255.1/24 brd 100.64.255.255 scope global eth0\\       valid_lft forever',
      '5: hybrid0    inet 100.64.255.2/32 scope global hybrid0\\       valid_lft forever',
    ].join('\n')
    assert.deepEqual(addressFact('100.64.255.1', ip), {address: '100.64.255.1', interfaces: ['eth0'], ours: false})
    assert.deepEqual(addressFact('100.64.255.2', ip), {address: '100.64.255.2', interfaces: ['hybrid0'], ours: true})
    assert.deepEqual(addressFact('100.64.255.3', ip), {address: '100.64.255.3', interfaces: [], ours: false})
  })
})

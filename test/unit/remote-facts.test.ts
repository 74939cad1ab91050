import {strict as assert} from 'node:assert'

import type {WorkerSpec} from '../../src/inventory/model.js'
import {
  addressFact,
  type HostFacts,
  k3sArch,
  parseInterfaceAddresses,
  parseOsRelease,
  parseProcNetTcp,
  portFree,
  sshdFromConfig,
} from '../../src/remote/facts.js'
import {type CheckedInventory, judgeFacts} from '../../src/remote/worker-check.js'

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

  it('lists every interface address, as the kubelet checks a node IP against them', () => {
    const ip = [
      '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
      '2: eth0@if9    inet 10.213.4.11/24 brd 10.213.4.255 scope global eth0\\       valid_lft forever',
      '2: eth0@if9    inet6 fe80::1/64 scope link \\       valid_lft forever',
    ].join('\n')
    assert.deepEqual(parseInterfaceAddresses(ip), [
      {interface: 'lo', address: '127.0.0.1'},
      {interface: 'eth0', address: '10.213.4.11'},
      {interface: 'eth0', address: 'fe80::1'},
    ])
  })

  it('a worker whose internalAddress is on none of its interfaces cannot be used, in one sentence naming both', () => {
    const facts: HostFacts = {
      user: 'root',
      sudo: {ability: 'root'},
      os: null,
      arch: {machine: 'x86_64', k3s: 'amd64'},
      init: {system: 'none', pid1: 'init'},
      k3s: {binary: null, version: null, server: false, agent: false, traces: [], owner: null},
      ports: [],
      sshd: {gatewayPorts: 'clientspecified', allowTcpForwarding: 'yes', source: 'sshd -T'},
      advertiseAddress: null,
      interfaceAddresses: [
        {interface: 'lo', address: '127.0.0.1'},
        {interface: 'eth0', address: '10.213.4.11'},
      ],
    }
    const inventory = {
      workers: [],
      concurrency: 1,
      network: {mode: 'direct', cni: 'auto', manageSshd: true},
      controlPlane: {advertiseAddress: '100.64.255.1', apiPort: 6443},
    } as unknown as CheckedInventory
    const worker = {name: 'w1', address: '10.213.4.50', service: 'auto'} as WorkerSpec
    assert.deepEqual(judgeFacts(worker, facts, inventory).problems, [])
    const wrong = judgeFacts({...worker, internalAddress: '10.213.4.50'}, facts, inventory).problems
    assert.deepEqual(wrong, [
      'w1: its internalAddress 10.213.4.50 is not an address of any of its interfaces (127.0.0.1, 10.213.4.11), and the kubelet refuses such a node IP; give one of them, or leave internalAddress out',
    ])
    assert.deepEqual(judgeFacts({...worker, internalAddress: '10.213.4.11'}, facts, inventory).problems, [])
  })
})

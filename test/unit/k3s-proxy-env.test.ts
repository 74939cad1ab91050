import assert from 'node:assert/strict'

import {bypassed, proxyFor} from '../../src/k3s/proxy-env.js'

/** Which proxy a k3s download uses, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY. */
describe('k3s downloads: proxy from the environment', function () {
  const github = new URL('https://github.com/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1/k3s')
  const plain = new URL('http://mirror.example:8080/k3s')

  it('HTTPS_PROXY for https URLs, HTTP_PROXY for http ones, lower case first', function () {
    assert.equal(proxyFor(github, {HTTPS_PROXY: 'http://proxy:3128'}), 'http://proxy:3128')
    assert.equal(proxyFor(github, {HTTP_PROXY: 'http://proxy:3128'}), undefined)
    assert.equal(proxyFor(plain, {HTTP_PROXY: 'http://p:1'}), 'http://p:1')
    assert.equal(proxyFor(github, {https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1'}), 'http://lower:1')
    assert.equal(proxyFor(github, {HTTPS_PROXY: '  '}), undefined)
  })

  it('a proxy written without a scheme is http://', function () {
    assert.equal(proxyFor(github, {HTTPS_PROXY: 'proxy.corp:3128'}), 'http://proxy.corp:3128')
  })

  it('loopback is proxied unless NO_PROXY names it (no implicit bypass)', function () {
    const local = new URL('http://127.0.0.1:5000/v2/')
    assert.equal(proxyFor(local, {HTTP_PROXY: 'http://p:1'}), 'http://p:1')
    assert.equal(proxyFor(local, {HTTP_PROXY: 'http://p:1', NO_PROXY: '127.0.0.1'}), undefined)
  })

  it('NO_PROXY: domains and their subdomains, leading dots and *., ports, *, IPs and CIDR blocks', function () {
    const cases: [string, string, boolean][] = [
      ['https://github.com/x', 'github.com', true],
      ['https://objects.github.com/x', 'github.com', true],
      ['https://notgithub.com/x', 'github.com', false],
      ['https://objects.github.com/x', '.github.com', true],
      ['https://objects.github.com/x', '*.github.com', true],
      ['https://github.com/x', 'example.org, github.com', true],
      ['https://github.com/x', 'example.org github.com', true],
      ['https://github.com/x', 'github.com:8443', false],
      ['https://github.com:8443/x', 'github.com:8443', true],
      ['https://github.com/x', '*', true],
      ['http://10.1.2.3/x', '10.0.0.0/8', true],
      ['http://11.1.2.3/x', '10.0.0.0/8', false],
      ['http://[::1]:80/x', '::1', true],
      ['http://[fd00::5]/x', 'fd00::/8', true],
      ['http://[fe80::5]/x', 'fd00::/8', false],
      ['http://[::ffff:10.0.0.1]/x', '::ffff:10.0.0.0/104', true],
      ['http://[::ffff:10.0.0.1]/x', '10.0.0.0/8', true],
      ['http://10.0.0.1/x', '10.0.0.0/33', false],
      ['http://10.0.0.1/x', 'not-an-ip/8', false],
      ['https://GitHub.COM/x', 'github.com', true],
      ['https://github.com/x', '', false],
    ]
    for (const [url, noProxy, expected] of cases)
      assert.equal(bypassed(new URL(url), noProxy), expected, `${url} with NO_PROXY=${noProxy}`)
  })
})

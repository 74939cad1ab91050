import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

/**
 * The commented starter inventory `hybrid init` writes: every section of docs/architecture.md, "The inventory" with its default
 * spelled out and a line on what it does, and one example worker left commented out, so the file
 * validates as it is (a control-plane-only cluster) and the user fills in the workers.
 */

export interface StarterOptions {
  /** metadata.name; the caller has checked it is a DNS-1123 label. */
  readonly name: string
  /** Path or URL of schema.json for editors (the yaml-language-server comment); omitted when undefined. */
  readonly schema?: string
}

/** inventory/schema.json of this installation of hybrid, if it is there. */
export function installedSchemaPath(): string | undefined {
  // This module runs as dist/src/inventory/starter.js; the package root is three levels up.
  const path = fileURLToPath(new URL('../../../inventory/schema.json', import.meta.url))
  return existsSync(path) ? path : undefined
}

export function starterInventory({name, schema}: StarterOptions): string {
  const editorLine = schema === undefined ? '' : `# yaml-language-server: $schema=${schema}\n`
  return `${editorLine}# A hybrid inventory: a k3s control plane in this sandbox, worker hosts joined over SSH.
# Check it with: hybrid inventory validate FILE    Bring the cluster up with: hybrid up --inventory FILE
# Relative paths are relative to this file; ~ is your home directory.
apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}                      # DNS-1123 label; also the kubeconfig context name
spec:
  k3s:
    version: v1.34.1+k3s1          # k3s release for the server and every agent
    # binary: ./k3s                # a local k3s binary instead of downloading one (air-gapped)
    # sha256: "…"                  # pin the binary's checksum (else the release's sha256sum file is used)
    # mirror: https://mirror.example.com/k3s   # base URL of a release mirror
    distribute: coordinator        # coordinator | peers (one worker per group serves the others) | worker-download
  token:
    file: ~/.config/hybrid/${name}.token   # created 0600 with a random token if missing
    # env: HYBRID_TOKEN            # or read it from an environment variable (exactly one of file/env)
  controlPlane:
    dataDir: /var/lib/hybrid/${name}   # k3s --data-dir
    agent: true                    # false: agentless server (--disable-agent), fewer workarounds
    workarounds: auto              # auto | all | none | [snapshotter, cadvisor, procsys, …]
    advertiseAddress: 100.64.255.1 # where agents and pods reach the API (tunnel mode: a virtual IP)
    apiPort: 6443
    # snapshots:                   # encrypted snapshots (datastore, CA, tokens) kept on workers, so a new
    #   to: [w1, w2]               # sandbox's \`hybrid up\` restores the same cluster; workers by name
    #   every: 10m                 # how often the supervisor takes one (also on \`hybrid down\`)
    #   keep: 5                    # how many each worker keeps
  network:
    mode: tunnel                   # tunnel: workers reach the API through SSH remote forwards
                                   # direct: workers dial https://advertiseAddress:apiPort themselves
    cni: auto                      # auto | flannel | none (bring your own)
    manageSshd: true               # tunnel mode may add an sshd drop-in (GatewayPorts) on workers
  ssh:                             # defaults for every worker; a worker's own ssh: overrides any key
    user: root
    port: 22
    identityFile: ~/.ssh/id_ed25519   # null: use ssh-agent (SSH_AUTH_SOCK)
    knownHosts: ~/.ssh/known_hosts
    hostKeyPolicy: strict          # strict | accept-new | pinned (pinned: each worker's hostKey)
    sudo: auto                     # auto | never | nopasswd | password (from HYBRID_SUDO_PASSWORD)
    bastion: null                  # or {address: jump.example.com, port: 22, user: ops}
    proxy: null                    # or "http://proxy:3128", or "env" (use HTTPS_PROXY)
    connectTimeoutSeconds: 15
    config: null                   # or an OpenSSH client config (true: ~/.ssh/config): its HostName, User, Port,
                                   #   IdentityFile, ProxyJump, UserKnownHostsFile, StrictHostKeyChecking for
                                   #   each worker's address; keys written here win (delete them to take the file's)
    # passphraseEnv: KEY_PASSPHRASE  # the variable holding identityFile's passphrase (else: ssh-agent)
    commandTimeoutSeconds: 120     # a remote command that takes longer is stopped (a hung login, a hung disk)
    uploadTimeoutSeconds: 1800     # an upload (the ~70 MiB k3s binary) that takes longer is broken off
    outputLimitBytes: 16777216     # a remote command that prints more is stopped
  concurrency: 10                  # workers handled at once
  # agent: {kubelet-arg: [max-pods=50], environment: {HTTP_PROXY: "http://proxy:3128"}}
  # ^ every worker's k3s agent: k3s agent flag names (flannel-iface, node-label, …), environment (its env
  # file, never argv), files: [{source: ./ca.crt, destination: /etc/ssl/certs/ca.crt, mode: "0644"}];
  # a worker's own agent: is merged over it
  # registries: {mirrors: {docker.io: {endpoint: ["https://registry.example.com:5000"]}}}
  # ^ written as /etc/rancher/k3s/registries.yaml (0600) on every worker; configs: {REGISTRY: {auth:
  # {username: puller, passwordEnv: REGISTRY_PASSWORD}}} (or passwordFile) for a registry's login
  images:
    archives: []                   # image archives for every worker's agent/images (airgapped workers)
    flannelRegistry: ghcr.io       # or a mirror of ghcr.io's flannel-io images
  upgrade:                         # a changed k3s.version: the server first, then the workers in batches
    maxUnavailable: 1              # workers cordoned, drained and restarted at once
    drainTimeoutSeconds: 120       # a drain PodDisruptionBudgets still block then fails that worker
  workers: []                      # none yet (a control-plane-only cluster); replace [] with hosts like:
  #  - name: w1                     # DNS-1123 label, unique; the Node name
  #    address: 192.0.2.10          # IP address or DNS name
  #    internalAddress: 10.0.0.10   # optional: the Node's InternalIP (an address on the worker's interfaces);
  #                                 # default: address when the worker has it, else k3s chooses
  #    externalAddress: 192.0.2.10  # optional: the Node's ExternalIP; default: address when it is an IP the
  #                                 # worker does not have (NAT, a forwarded port)
  #    ssh: {user: ubuntu}          # overrides spec.ssh for this worker
  #    labels: {topology.kubernetes.io/zone: a}
  #    taints: []                   # "key=value:Effect"
  #    service: auto                # auto | systemd | openrc | none
  #    agent: {flannel-iface: eth1} # merged over spec.agent for this worker
  #    group: rack1                 # spec.k3s.distribute peers: workers that reach each other (default: the /24)
`
}

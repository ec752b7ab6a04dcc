/**
 * A real single-node hosting cluster for the tests: kube-apiserver (kine on the run's PostgreSQL), every workload
 * controller of kube-controller-manager, kube-scheduler, containerd + runc from Debian, kubelet, kube-proxy
 * (iptables) and CoreDNS as a Pod, with local images (images.ts). Settings follow
 * ../shared/reference/real-node-in-tests.md. Node-wide things (cgroups, iptables chains, kubelet ports, the bridge)
 * allow one node per machine: a lock file guards it and stop() removes everything it made; leftovers() checks.
 */
import { ChildProcess, execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  apiserverArgs,
  freePort,
  killAll,
  makePki,
  psql,
  startProcess,
  waitFor,
  waitReady,
  writeKubeconfig,
} from '../cluster/harness';
import { buildImage, COREDNS_IMAGE, imageSpecs, PAUSE_IMAGE } from './images';

/** Addresses and names of the test node; none of them is the machine's own. */
export const NODE = {
  name: 'kflex-node',
  /** A documentation range (RFC 5737 TEST-NET-2) on an interface of our own; the kubelet refuses loopback. */
  ip: '198.51.100.10',
  link: 'kflexnode0',
  bridge: 'kflexbr0',
  podCidr: '10.244.0.0/24',
  serviceCidr: '10.0.0.0/24',
  dnsIp: '10.0.0.10',
} as const;

const LOCK = '/run/kflex-test-node.lock';
const NODE_BINARIES = ['kube-apiserver', 'kube-controller-manager', 'kine', 'kube-scheduler', 'kubelet'];
const MORE_BINARIES = ['kube-proxy', 'kubectl', 'coredns', 'pause'];
const COMMANDS = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'iptables', 'ip', 'mount', 'umount'];

/** Why a node cannot run here, or undefined when it can. */
export function nodeUnavailable(binDir: string | undefined): string | undefined {
  if (process.getuid?.() !== 0) return 'the real node needs root (containerd, kubelet, iptables)';
  if (!binDir) return 'KFLEX_BIN_DIR is not set (scripts/prepare-binaries.sh builds the binaries)';
  const missing = [...NODE_BINARIES, ...MORE_BINARIES].filter((b) => !fs.existsSync(path.join(binDir, b)));
  if (missing.length) return `binaries missing in ${binDir}: ${missing.join(', ')} (scripts/prepare-binaries.sh)`;
  const noCmd = COMMANDS.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (noCmd.length)
    return `commands missing: ${noCmd.join(', ')} (apt-get install containerd runc containernetworking-plugins iptables)`;
  if (!fs.existsSync('/usr/lib/cni/bridge')) return 'CNI plugins missing in /usr/lib/cni (containernetworking-plugins)';
  if (!fs.existsSync('/usr/lib/postgresql/15/bin/postgres')) return 'PostgreSQL 15 server missing (postgresql-15)';
  return undefined;
}

export interface NodeCluster {
  readonly dir: string;
  readonly logDir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly pki: string;
  /** Each local image with the upstream image it stands in for. */
  readonly images: Array<{ name: string; standsInFor: string }>;
  /** Milliseconds from start to node Ready and CoreDNS available. */
  readonly readyMs: number;
  /** Creates a `local` PersistentVolume on the node (pre-created, like a static provisioner would). */
  addLocalVolume(name: string, size: string): void;
  /** `ctr` against the node's containerd, in the CRI namespace. */
  ctr(args: string[]): string;
  stop(): Promise<void>;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: 'pipe' });
const trySh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const readSysctl = (p: string) => fs.readFileSync(`/proc/sys/${p}`, 'utf8').trim();
const writeSysctl = (p: string, v: string) => fs.writeFileSync(`/proc/sys/${p}`, v);

/** One node per machine: the lock names the holder and its directory, so a run that died is cleaned up. */
async function takeLock(dir: string): Promise<void> {
  if (fs.existsSync(LOCK)) {
    let held: { pid: number; dir: string } = { pid: 0, dir: '' };
    try {
      held = JSON.parse(fs.readFileSync(LOCK, 'utf8'));
    } catch {
      // unreadable: treat as stale
    }
    let alive = false;
    try {
      process.kill(held.pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`another test node runs on this machine (pid ${held.pid}, lock ${LOCK})`);
    if (held.dir) {
      process.stderr.write(`test node: cleaning up after a run that died (${held.dir})\n`);
      const pids = trySh('pgrep', ['-f', held.dir])
        .stdout.split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((p) => p !== process.pid);
      await cleanupMachine(held.dir, pids, true);
      if (mountsUnder(held.dir).length === 0) fs.rmSync(held.dir, { recursive: true, force: true });
    }
    fs.rmSync(LOCK, { force: true });
  }
  fs.writeFileSync(LOCK, JSON.stringify({ pid: process.pid, dir }), { flag: 'wx' });
}

/** The kubepods cgroups of every hierarchy (v1 controllers and the unified one), deepest first. */
function kubepodsCgroups(): string[] {
  const found: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const top = path.join('/sys/fs/cgroup', h, 'kubepods');
    if (!fs.existsSync(top)) continue;
    const walk = (d: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return; // removed meanwhile (a pod that just ended)
      }
      for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
      found.push(d);
    };
    walk(top);
  }
  return found;
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(`${dir}/`)))
    .map((m) => m.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

function ourChains(): Array<{ cmd: string; table: string; chain: string }> {
  const out: Array<{ cmd: string; table: string; chain: string }> = [];
  for (const cmd of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const r = trySh(cmd, ['-w', '-t', table, '-S']);
      if (r.status !== 0) continue;
      for (const line of r.stdout.split('\n')) {
        const m = /^-N ((?:KUBE|CNI)-\S+)/.exec(line);
        if (m) out.push({ cmd, table, chain: m[1] });
      }
    }
  }
  return out;
}

/** Unhooks the KUBE-/CNI- chains from the built-in chains (by rule number, last first), flushes and deletes them. */
export function removeOurChains(): void {
  for (const cmd of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      for (const chain of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) {
        const r = trySh(cmd, ['-w', '-t', table, '-L', chain, '-n', '--line-numbers']);
        if (r.status !== 0) continue;
        const numbers = r.stdout
          .split('\n')
          .map((l) => /^(\d+)\s+((?:KUBE|CNI)-\S+)/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => Number(m[1]))
          .sort((a, b) => b - a);
        for (const n of numbers) trySh(cmd, ['-w', '-t', table, '-D', chain, String(n)]);
      }
    }
  }
  const chains = ourChains();
  for (const c of chains) trySh(c.cmd, ['-w', '-t', c.table, '-F', c.chain]);
  for (const c of chains) trySh(c.cmd, ['-w', '-t', c.table, '-X', c.chain]);
}

/** Everything a node leaves behind when it is not cleaned up: empty after stop(). */
export function leftovers(dir: string): string[] {
  const found: string[] = [];
  // Every process of the node names `dir` on its command line (containerd's shims too: their socket is in it).
  const procs = trySh('pgrep', ['-af', dir]).stdout.trim();
  if (procs) found.push(`processes: ${procs.split('\n').join('; ')}`);
  const mounts = mountsUnder(dir);
  if (mounts.length) found.push(`mounts: ${mounts.join(', ')}`);
  const chains = ourChains();
  if (chains.length) found.push(`chains: ${chains.map((c) => `${c.cmd}/${c.table}/${c.chain}`).join(', ')}`);
  for (const link of [NODE.link, `${NODE.link}p`, NODE.bridge])
    if (trySh('ip', ['link', 'show', link]).status === 0) found.push(`interface: ${link}`);
  const cgroups = kubepodsCgroups();
  if (cgroups.length) found.push(`cgroups: ${cgroups.slice(0, 5).join(', ')}${cgroups.length > 5 ? ', …' : ''}`);
  if (fs.existsSync(LOCK)) found.push(`lock: ${LOCK}`);
  return found;
}

/**
 * What a node leaves on the machine, removed: processes in the pods' cgroups, containerd shims of `dir`, then (when
 * `all`) mounts under `dir`, KUBE-/CNI- chains, our interfaces and the kubepods cgroups. Also recovers from a run
 * that died without its teardown.
 */
export async function cleanupMachine(dir: string, extraPids: number[], all: boolean): Promise<void> {
  const sock = path.join(dir, 'containerd', 'containerd.sock');
  for (const cg of kubepodsCgroups()) {
    let listed = '';
    try {
      listed = fs.readFileSync(path.join(cg, 'cgroup.procs'), 'utf8');
    } catch {
      continue; // the cgroup went away meanwhile (its last process exited): nothing to kill
    }
    for (const pid of listed.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  const shims = trySh('pgrep', ['-f', `containerd-shim-runc-v2 .*${sock}`])
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
  await killAll([...shims, ...extraPids], 3000);
  if (!all) return;
  // 3. Mounts (kubelet volumes, secret tmpfs, overlay rootfs, netns bind mounts), deepest first.
  for (let i = 0; i < 3 && mountsUnder(dir).length; i++) {
    for (const m of mountsUnder(dir)) if (trySh('umount', [m]).status !== 0) trySh('umount', ['-l', m]);
  }
  // 4. kube-proxy's and CNI's iptables chains: unhook them from the built-in chains, flush, delete.
  removeOurChains();
  // 5. Interfaces, cgroups, kernel settings, logs the kubelet wrote outside its root dir, the database.
  for (const link of [NODE.bridge, NODE.link]) trySh('ip', ['link', 'del', link]);
  for (const cg of kubepodsCgroups()) {
    try {
      fs.rmdirSync(cg);
    } catch {
      // reported by leftovers()
    }
  }
}

export async function startNode(opts: {
  binDir: string;
  logRoot: string;
  pgPort: number;
  pgPassword: string;
  pgSocketDir: string;
  /** Pods the kubelet runs at most (the pod CIDR is a /24). @default 60 */
  maxPods?: number;
  /**
   * An audit log of the hosting API server (metadata of every request but watches and health checks, as JSON lines):
   * who asks what, for a bench that must attribute requests. @default - none
   */
  auditLog?: string;
}): Promise<NodeCluster> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-node-'));
  await takeLock(dir);
  const logDir = path.join(opts.logRoot, path.basename(dir));
  fs.mkdirSync(logDir, { recursive: true });
  const pids: Record<string, number> = {};
  const children: Record<string, ChildProcess> = {};
  const bin = (b: string) => path.join(opts.binDir, b);
  const sysctls: Record<string, string> = {};
  for (const s of ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables'])
    if (fs.existsSync(`/proc/sys/${s}`)) sysctls[s] = readSysctl(s);
  const varLogPods = new Set(fs.existsSync('/var/log/pods') ? fs.readdirSync('/var/log/pods') : []);
  const varLogContainers = new Set(fs.existsSync('/var/log/containers') ? fs.readdirSync('/var/log/containers') : []);
  const database = `kine_node_${process.pid}`;
  const containerdDir = path.join(dir, 'containerd');
  const sock = path.join(containerdDir, 'containerd.sock');
  const pki = path.join(dir, 'pki');
  const kubeconfig = path.join(pki, 'admin.kubeconfig');
  const kubectl = (args: string[], input?: string) =>
    execFileSync(bin('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
      encoding: 'utf8',
      input,
      stdio: 'pipe',
      timeout: 120_000,
    });
  const ctr = (args: string[]) => sh('ctr', ['--address', sock, '-n', 'k8s.io', ...args]);
  const start = (name: string, cmd: string, args: string[]) => {
    const child = startProcess(name, cmd, args, logDir);
    pids[name] = child.pid!;
    children[name] = child;
    return child;
  };

  const stop = async () => {
    // 1. Pods go through the API first, so the kubelet stops them and runs CNI DEL.
    if (pids.kubelet && pids['kube-apiserver']) {
      try {
        kubectl(['delete', 'deployments,statefulsets,daemonsets,jobs,replicasets', '--all', '-A', '--wait=false']);
        kubectl(['delete', 'pods', '--all', '-A', '--grace-period=2', '--timeout=60s']);
        // The kubelet stops sandboxes (CNI DEL) before it lets the API forget a pod: no task should run now.
        await waitFor('pod tasks stopped', () => ctr(['tasks', 'ls', '-q']).trim() === '', 60_000);
      } catch (e) {
        process.stderr.write(`node teardown: pods not all removed through the API: ${String(e).slice(0, 300)}\n`);
      }
    }
    // 2. kube-proxy and the kubelet, then whatever still runs in the pods' cgroups, the shims and containerd.
    await killAll(['kube-proxy', 'kubelet'].map((n) => pids[n]).filter(Boolean));
    await cleanupMachine(dir, [], false);
    await killAll(['containerd', 'kube-scheduler', 'kube-controller-manager'].map((n) => pids[n]).filter(Boolean));
    await killAll(['kube-apiserver', 'kine'].map((n) => pids[n]).filter(Boolean));
    await cleanupMachine(dir, [], true);
    for (const [s, v] of Object.entries(sysctls)) writeSysctl(s, v);
    for (const d of fs.existsSync('/var/log/pods') ? fs.readdirSync('/var/log/pods') : [])
      if (!varLogPods.has(d)) fs.rmSync(path.join('/var/log/pods', d), { recursive: true, force: true });
    for (const d of fs.existsSync('/var/log/containers') ? fs.readdirSync('/var/log/containers') : [])
      if (!varLogContainers.has(d)) fs.rmSync(path.join('/var/log/containers', d), { force: true });
    try {
      psql({ pgPort: opts.pgPort, pgSocketDir: opts.pgSocketDir }, `DROP DATABASE IF EXISTS ${database}`);
    } catch {
      // the run's PostgreSQL may already be gone
    }
    if (mountsUnder(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(LOCK, { force: true });
  };

  try {
    // Network: the node's own address on a dummy interface.
    // This kernel has no dummy driver: one end of a veth pair of our own stands in for it (deleting it deletes both).
    sh('ip', ['link', 'add', NODE.link, 'type', 'veth', 'peer', 'name', `${NODE.link}p`]);
    sh('ip', ['addr', 'add', `${NODE.ip}/32`, 'dev', NODE.link]);
    sh('ip', ['link', 'set', NODE.link, 'up']);
    sh('ip', ['link', 'set', `${NODE.link}p`, 'up']);
    if ('net/bridge/bridge-nf-call-iptables' in sysctls) writeSysctl('net/bridge/bridge-nf-call-iptables', '1');
    writeSysctl('net/ipv4/ip_forward', '1');

    const client = (name: string, subj: string) => ({ name, subj, ext: 'extendedKeyUsage=clientAuth\n' });
    makePki(pki, {
      sans: [
        `IP:${NODE.ip}`,
        'IP:10.0.0.1',
        'IP:127.0.0.1',
        'DNS:localhost',
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
      ],
      extra: [
        client('node', `/O=system:nodes/CN=system:node:${NODE.name}`),
        client('scheduler', '/CN=system:kube-scheduler'),
        client('proxy', '/CN=system:kube-proxy'),
        client('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client'),
        {
          name: 'kubelet',
          subj: `/CN=${NODE.name}`,
          ext: `subjectAltName=IP:${NODE.ip},DNS:${NODE.name}\nextendedKeyUsage=serverAuth\n`,
        },
      ],
    });

    // Control plane: kine on the run's PostgreSQL, the API server on the node address.
    psql({ pgPort: opts.pgPort, pgSocketDir: opts.pgSocketDir }, `CREATE DATABASE ${database}`);
    const kinePort = await freePort();
    const kine = startProcess(
      'kine',
      bin('kine'),
      [`--listen-address=127.0.0.1:${kinePort}`, '--metrics-bind-address=0'],
      logDir,
      {
        KINE_ENDPOINT: `postgres://postgres:${opts.pgPassword}@127.0.0.1:${opts.pgPort}/${database}?sslmode=disable`,
      },
    );
    pids.kine = kine.pid!;
    const port = await freePort();
    const server = `https://${NODE.ip}:${port}`;
    const overrides: Record<string, string> = {
      '--bind-address': NODE.ip,
      '--advertise-address': NODE.ip,
      '--endpoint-reconciler-type': 'lease',
      '--authorization-mode': 'Node,RBAC',
      '--enable-admission-plugins': 'NodeRestriction',
      '--service-account-issuer': 'https://kubernetes.default.svc.cluster.local',
      '--kubelet-client-certificate': `${pki}/apiserver-kubelet-client.crt`,
      '--kubelet-client-key': `${pki}/apiserver-kubelet-client.key`,
      '--kubelet-certificate-authority': `${pki}/ca.crt`,
      '--kubelet-preferred-address-types': 'InternalIP',
    };
    if (opts.auditLog) {
      const policy = path.join(dir, 'audit-policy.yaml');
      fs.writeFileSync(
        policy,
        [
          'apiVersion: audit.k8s.io/v1',
          'kind: Policy',
          'omitStages: [RequestReceived]',
          'rules:',
          '- level: None',
          '  verbs: [watch]',
          '- level: None',
          '  nonResourceURLs: [/healthz*, /readyz*, /livez*, /metrics]',
          '- level: Metadata',
          '',
        ].join('\n'),
      );
      Object.assign(overrides, {
        '--audit-policy-file': policy,
        '--audit-log-path': opts.auditLog,
        '--audit-log-format': 'json',
        '--audit-log-maxsize': '0',
      });
    }
    const args = apiserverArgs(pki, port, `http://127.0.0.1:${kinePort}`).filter(
      (a) => !(a.split('=')[0] in overrides),
    );
    const apiserver = start('kube-apiserver', bin('kube-apiserver'), [
      ...args,
      ...Object.entries(overrides).map(([k, v]) => `${k}=${v}`),
    ]);
    await waitReady(`${server}/readyz`, pki, apiserver);
    writeKubeconfig(kubeconfig, server, pki, 'admin', 'kflex-node');
    for (const u of ['kcm', 'scheduler', 'proxy', 'node'])
      writeKubeconfig(path.join(pki, `${u}.kubeconfig`), server, pki, u, 'kflex-node');
    start('kube-controller-manager', bin('kube-controller-manager'), [
      `--kubeconfig=${pki}/kcm.kubeconfig`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
      '--controllers=*',
      `--service-account-private-key-file=${pki}/sa.key`,
      `--root-ca-file=${pki}/ca.crt`,
      '--use-service-account-credentials=true',
      `--cluster-signing-cert-file=${pki}/ca.crt`,
      `--cluster-signing-key-file=${pki}/ca.key`,
    ]);
    start('kube-scheduler', bin('kube-scheduler'), [
      `--kubeconfig=${pki}/scheduler.kubeconfig`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
    ]);

    // Runtime: containerd with its own root, state and socket; the CRI settings the reference found necessary.
    const cniConf = path.join(dir, 'cni/net.d');
    fs.mkdirSync(cniConf, { recursive: true });
    fs.mkdirSync(containerdDir, { recursive: true });
    fs.writeFileSync(
      path.join(containerdDir, 'config.toml'),
      `version = 2
root = "${containerdDir}/root"
state = "${containerdDir}/state"
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${containerdDir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  enable_selinux = false
  disable_apparmor = true
  # Root here lacks CAP_SYS_RESOURCE: without this, runc cannot lower the sandbox's oom_score_adj and dies.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cniConf}"
`,
    );
    fs.writeFileSync(
      path.join(cniConf, '10-kflex.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: 'kflex',
        plugins: [
          {
            type: 'bridge',
            bridge: NODE.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: NODE.podCidr }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: path.join(dir, 'cni/ipam'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    start('containerd', 'containerd', ['--config', path.join(containerdDir, 'config.toml')]);
    await waitFor(
      'containerd socket',
      () => fs.existsSync(sock) && trySh('ctr', ['--address', sock, 'version']).status === 0,
      30_000,
    );

    // Images: built here, imported under the names our manifests use.
    const specs = imageSpecs(opts.binDir);
    const imageDir = path.join(dir, 'images');
    fs.mkdirSync(imageDir);
    for (const spec of specs) {
      const tarball = buildImage(spec, imageDir);
      ctr(['images', 'import', '--snapshotter', 'overlayfs', tarball]);
      fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
    }

    // The kubelet.
    const kubeletRoot = path.join(dir, 'kubelet');
    fs.mkdirSync(kubeletRoot, { recursive: true });
    fs.writeFileSync(path.join(dir, 'resolv.conf'), '');
    const kubeletConfig = path.join(dir, 'kubelet.yaml');
    fs.writeFileSync(
      kubeletConfig,
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: NODE.ip,
        healthzBindAddress: '127.0.0.1',
        healthzPort: 0,
        readOnlyPort: 0,
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: true },
          x509: { clientCAFile: `${pki}/ca.crt` },
        },
        authorization: { mode: 'Webhook' },
        tlsCertFile: `${pki}/kubelet.crt`,
        tlsPrivateKeyFile: `${pki}/kubelet.key`,
        cgroupDriver: 'cgroupfs',
        failCgroupV1: false,
        failSwapOn: false,
        cgroupsPerQOS: true,
        enforceNodeAllocatable: [],
        containerRuntimeEndpoint: `unix://${sock}`,
        clusterDNS: [NODE.dnsIp],
        clusterDomain: 'cluster.local',
        resolvConf: path.join(dir, 'resolv.conf'),
        podCIDR: NODE.podCidr,
        evictionHard: {
          'memory.available': '50Mi',
          'nodefs.available': '1%',
          'nodefs.inodesFree': '1%',
          'imagefs.available': '1%',
        },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        makeIPTablesUtilChains: false,
        serializeImagePulls: false,
        volumePluginDir: path.join(dir, 'volume-plugins'),
        maxPods: opts.maxPods ?? 60,
      }),
    );
    start('kubelet', bin('kubelet'), [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${pki}/node.kubeconfig`,
      `--root-dir=${kubeletRoot}`,
      `--cert-dir=${path.join(dir, 'kubelet-pki')}`,
      `--hostname-override=${NODE.name}`,
      `--node-ip=${NODE.ip}`,
    ]);
    await waitFor(
      'node Ready',
      () => {
        try {
          return (
            kubectl([
              'get',
              'node',
              NODE.name,
              '-o',
              'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            ]).trim() === 'True'
          );
        } catch {
          return false;
        }
      },
      60_000,
    );

    // kube-proxy: iptables mode, NodePorts only on the node address, health and metrics on loopback.
    const proxyConfig = path.join(dir, 'kube-proxy.yaml');
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    fs.writeFileSync(
      proxyConfig,
      JSON.stringify({
        apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
        kind: 'KubeProxyConfiguration',
        clientConnection: { kubeconfig: `${pki}/proxy.kubeconfig` },
        mode: 'iptables',
        clusterCIDR: NODE.podCidr,
        hostnameOverride: NODE.name,
        nodePortAddresses: [`${NODE.ip}/32`],
        conntrack: { maxPerCore: 0 },
        oomScoreAdj: 0,
        healthzBindAddress: `127.0.0.1:${healthPort}`,
        metricsBindAddress: `127.0.0.1:${metricsPort}`,
      }),
    );
    start('kube-proxy', bin('kube-proxy'), [`--config=${proxyConfig}`]);

    // CoreDNS as a Pod (no forward plugin: nothing leaves the machine).
    kubectl(['apply', '--server-side', '--field-manager=kflex-test-node', '-f', '-'], corednsManifests());
    kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=120s']);

    return {
      dir,
      logDir,
      kubeconfig,
      server,
      pki,
      images: specs.map((s) => ({ name: s.name, standsInFor: s.standsInFor })),
      readyMs: Date.now() - started,
      addLocalVolume(name: string, size: string) {
        const volDir = path.join(dir, 'volumes', name);
        fs.mkdirSync(volDir, { recursive: true });
        kubectl(
          ['apply', '--server-side', '--field-manager=kflex-test-node', '-f', '-'],
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'PersistentVolume',
            metadata: { name },
            spec: {
              capacity: { storage: size },
              accessModes: ['ReadWriteOnce'],
              persistentVolumeReclaimPolicy: 'Retain',
              local: { path: volDir },
              nodeAffinity: {
                required: {
                  nodeSelectorTerms: [
                    { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [NODE.name] }] },
                  ],
                },
              },
            },
          }),
        );
      },
      ctr,
      stop,
    };
  } catch (e) {
    process.stderr.write(`test node failed to start (logs: ${logDir}): ${String(e)}\n`);
    await stop();
    throw e;
  }
}

/** CoreDNS for the node's cluster.local: its RBAC, ConfigMap, Deployment and the kube-dns Service. */
function corednsManifests(): string {
  const labels = { 'k8s-app': 'kube-dns' };
  const objects = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: 'kube-system' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'kflex-test:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kflex-test:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kflex-test:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'coredns', namespace: 'kube-system' },
      data: {
        Corefile: [
          '.:1053 {',
          '    errors',
          '    health :8080',
          '    ready :8181',
          '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
          '        pods insecure',
          '        fallthrough in-addr.arpa ip6.arpa',
          '    }',
          '    cache 30',
          '}',
          '',
        ].join('\n'),
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: 'kube-system', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'coredns',
                image: COREDNS_IMAGE,
                imagePullPolicy: 'IfNotPresent',
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { containerPort: 1053, protocol: 'UDP', name: 'dns' },
                  { containerPort: 1053, protocol: 'TCP', name: 'dns-tcp' },
                ],
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10 },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
      spec: {
        clusterIP: NODE.dnsIp,
        selector: labels,
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
  ];
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
}

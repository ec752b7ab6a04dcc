// k3s cannot be built or run here (the module proxy refuses it): its StatefulSet is checked against k3s's documented
// server options (docs.k3s.io/cli/server; `--disable-agent` exists but is hidden) and its custom-CA file layout
// (k3s-io/k3s#1868: CA files created in <data-dir>/server/tls before the first start are used as they are).
import { K3sControlPlane } from '../lib';
import { find, setup, synth } from './helpers';

/** Documented `k3s server` options we may use, with the values k3s accepts where it restricts them. */
const DOCUMENTED: Record<string, RegExp> = {
  'data-dir': /^\/\S+$/,
  'https-listen-port': /^\d+$/,
  'tls-san': /^[a-z0-9.-]+$/,
  'write-kubeconfig': /^\/\S+$/,
  'write-kubeconfig-mode': /^0?[0-7]{3}$/,
  'disable-agent': /^$/,
  disable:
    /^(coredns|servicelb|traefik|local-storage|metrics-server|runtimes)(,(coredns|servicelb|traefik|local-storage|metrics-server|runtimes))*$/,
  'disable-helm-controller': /^$/,
  'disable-network-policy': /^$/,
  'disable-cloud-controller': /^$/,
  'disable-kube-proxy': /^$/,
  'disable-scheduler': /^$/,
  'egress-selector-mode': /^(agent|cluster|pod|disabled)$/,
  'flannel-backend': /^(none|vxlan|host-gw|wireguard-native)$/,
  'kube-controller-manager-arg': /^[a-z-]+=\S+$/,
  'kube-apiserver-arg': /^[a-z-]+=\S+$/,
  'secrets-encryption': /^$/,
};

describe('k3s against its documented server options', () => {
  const { app, hosting } = setup();
  const objects = synth(new K3sControlPlane(app, 'k', { hosting }));
  const pod = find(objects, 'StatefulSet', 'k3s-server').spec.template.spec;
  const server = pod.containers[0];

  test('every flag is a documented k3s server option with a value k3s accepts', () => {
    expect(server.args[0]).toBe('server');
    const bad = server.args.slice(1).filter((a: string) => {
      const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
      return !m || !(m[1] in DOCUMENTED) || !DOCUMENTED[m[1]].test(m[2] ?? '');
    });
    expect(bad).toEqual([]);
  });

  test('paths agree: the data dir, the kubeconfig k3s writes, and the CA files seeded before the first start', () => {
    const arg = (f: string) => server.args.find((a: string) => a.startsWith(`--${f}=`))?.split('=')[1];
    const dataDir = arg('data-dir');
    expect(dataDir).toBe('/var/lib/rancher/k3s');
    expect(server.env).toEqual(expect.arrayContaining([{ name: 'K3S_DATA_DIR', value: dataDir }]));
    const mounts = (c: any) => c.volumeMounts.map((m: any) => m.mountPath);
    expect(mounts(server)).toEqual(expect.arrayContaining([dataDir, '/etc/rancher/k3s']));
    expect(arg('write-kubeconfig')).toBe('/etc/rancher/k3s/k3s.yaml');
    const seed = pod.initContainers[0];
    expect(mounts(seed)).toEqual(expect.arrayContaining([dataDir]));
    const script = seed.args[0] as string;
    expect(script).toContain(`${dataDir}/server/tls`);
    for (const ca of ['server-ca', 'client-ca', 'request-header-ca'])
      for (const ext of ['crt', 'key']) expect(script).toContain(`${ca}.${ext}`);
    // Copied only when absent: k3s keeps its CAs, replacing them would invalidate every client.
    expect(script).toMatch(/\[ -f [^\]]+ \] \|\| cp /);
    expect(server.ports).toEqual([{ containerPort: 6443, name: 'https' }]);
    expect(arg('https-listen-port')).toBe('6443');
  });
});

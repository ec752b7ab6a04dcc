// vCluster cannot be built or run here (the module proxy refuses it): its objects are checked against the chart's
// documented behaviour instead. The keys below decide whether vCluster starts at all: it reads config.yaml strictly
// and applies no defaults, so a missing boolean is false and a missing port is 0.
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import { IMAGES, VClusterControlPlane } from '../lib';
import { mergeValues, VCLUSTER_CHART_DEFAULTS } from '../lib/vcluster-config';
import { buildExamplePlatform } from '../main';
import { find, setup, synth } from './helpers';

const configOf = (objects: any[]) => parse(find(objects, 'Secret', 'vc-config-vcluster').stringData['config.yaml']);

/** Every leaf of a values tree as `a.b.c` -> value (empty maps and lists are leaves). */
function leaves(v: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = v;
  return out;
}

describe('vCluster configuration', () => {
  test('the keys that decide whether vCluster starts are written', () => {
    const { app, hosting } = setup();
    const c = configOf(synth(new VClusterControlPlane(app, 'v', { hosting })));
    expect(c.controlPlane.distro.k8s).toMatchObject({
      enabled: true,
      apiServer: { enabled: true },
      controllerManager: { enabled: true },
      scheduler: { enabled: false },
    });
    expect(c.controlPlane.proxy).toMatchObject({ bindAddress: '0.0.0.0', port: 8443 });
    expect(c.controlPlane.coredns).toMatchObject({ enabled: true, embedded: false });
    expect(c.controlPlane.backingStore.database.embedded.enabled).toBe(true);
    expect(c.networking.advanced.clusterDomain).toBe('cluster.local');
    for (const kind of ['pods', 'services', 'configMaps', 'secrets', 'endpoints', 'persistentVolumeClaims'])
      expect([kind, c.sync.toHost[kind].enabled]).toEqual([kind, true]);
    expect(c.sync.fromHost.events.enabled).toBe(true);
    expect(c.experimental.syncSettings.setOwner).toBe(true);
    expect(c.networking.advanced.proxyKubelets).toEqual({ byHostname: true, byIP: true });
    expect(c.controlPlane.statefulSet.probes.readinessProbe.timeoutSeconds).toBe(3);
    expect(c.telemetry).toEqual({ enabled: false });
  });

  test('the StatefulSet and syncer role follow the configuration: hash annotation, probes, image, endpoints written', () => {
    const { app, hosting } = setup();
    const objects = synth(new VClusterControlPlane(app, 'v', { hosting }));
    const sts = find(objects, 'StatefulSet', 'vcluster');
    const pod = sts.spec.template;
    expect(pod.metadata.annotations.vClusterConfigHash).toMatch(/^[0-9a-f]{64}$/);
    expect(pod.spec.terminationGracePeriodSeconds).toBe(10);
    const [syncer] = pod.spec.containers;
    expect(syncer.readinessProbe).toMatchObject({ timeoutSeconds: 3, periodSeconds: 2, failureThreshold: 60 });
    expect(syncer.livenessProbe).toMatchObject({ timeoutSeconds: 3, initialDelaySeconds: 60 });
    expect(syncer.startupProbe).toMatchObject({ timeoutSeconds: 3, periodSeconds: 6, failureThreshold: 300 });
    expect(syncer.resources).toEqual({
      requests: { cpu: '200m', memory: '256Mi', 'ephemeral-storage': '400Mi' },
      limits: { memory: '2Gi', 'ephemeral-storage': '8Gi' },
    });
    // The init container's image is the one the configuration names (the chart derives it the same way).
    const k8s = configOf(objects).controlPlane.distro.k8s.image;
    expect(pod.spec.initContainers[0].image).toBe(`${k8s.registry}/${k8s.repository}:${k8s.tag}`);
    expect(pod.spec.initContainers[0].image).toBe(IMAGES.vclusterKubernetes);
    const syncerImage = configOf(objects).controlPlane.statefulSet.image;
    expect(syncer.image).toBe(`${syncerImage.registry}/${syncerImage.repository}:${syncerImage.tag}`);
    // The chart's Role is the hosting install's ClusterRole, bound in the plane's namespace (no escalate needed).
    expect(find(objects, 'RoleBinding', 'vc-vcluster').roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'kubeflex-vcluster',
    });
    const rules = find(synth(hosting), 'ClusterRole', 'kubeflex-vcluster').rules as any[];
    const verbsOf = (group: string, resource: string) =>
      rules
        .filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
        .flatMap((r) => r.verbs)
        .sort();
    expect(verbsOf('', 'endpoints')).toEqual(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']);
    expect(verbsOf('apps', 'deployments')).toEqual(['get', 'list', 'watch']);
    expect(rules.some((r) => r.apiGroups.includes('discovery.k8s.io'))).toBe(false);
  });

  test('Service vcluster has annotations (vCluster writes into that map at start-up and crashes on a nil map) and the chart label', () => {
    const { app, hosting } = setup();
    const objects = synth(new VClusterControlPlane(app, 'v', { hosting }));
    const svc = find(objects, 'Service', 'vcluster');
    expect(svc.metadata.annotations).toEqual({
      'meta.helm.sh/release-name': 'vcluster',
      'meta.helm.sh/release-namespace': 'v-system',
    });
    expect(svc.metadata.labels['vcluster.loft.sh/service']).toBe('true');
    expect(Object.keys(find(objects, 'Service', 'vcluster-headless').metadata.annotations).length).toBeGreaterThan(0);
  });

  test('a configuration change changes the hash (the pod rolls); the same input gives the same hash', () => {
    const hash = (size: string) => {
      const { app, hosting } = setup();
      const objects = synth(new VClusterControlPlane(app, 'v', { hosting, storageSize: size }));
      return find(objects, 'StatefulSet', 'vcluster').spec.template.metadata.annotations.vClusterConfigHash;
    };
    expect(hash('5Gi')).toBe(hash('5Gi'));
    expect(hash('6Gi')).not.toBe(hash('5Gi'));
  });

  test('the namespace gets the policies the chart renders from `policies`: two egress NetworkPolicies, quota, limit range', () => {
    const { app, hosting } = setup();
    const objects = synth(new VClusterControlPlane(app, 'v', { hosting }));
    const labels = { app: 'vcluster', chart: 'vcluster-0.26.1', release: 'vcluster', heritage: 'Helm' };
    const work = find(objects, 'NetworkPolicy', 'vc-work-vcluster');
    expect(work.metadata).toMatchObject({ name: 'vc-work-vcluster', namespace: 'v-system', labels });
    expect(work.spec).toEqual({
      podSelector: { matchLabels: { 'vcluster.loft.sh/managed-by': 'vcluster' } },
      egress: [
        { ports: [{ port: 443 }, { port: 8443 }], to: [{ podSelector: { matchLabels: { release: 'vcluster' } } }] },
        {
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
        {
          to: [
            { podSelector: { matchLabels: { 'vcluster.loft.sh/managed-by': 'vcluster' } } },
            {
              ipBlock: {
                cidr: '0.0.0.0/0',
                except: ['100.64.0.0/10', '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'],
              },
            },
          ],
        },
      ],
      policyTypes: ['Egress'],
    });
    const cp = find(objects, 'NetworkPolicy', 'vc-cp-vcluster');
    expect(cp.spec.podSelector).toEqual({ matchLabels: { release: 'vcluster' } });
    expect(cp.spec.egress[0]).toEqual({ ports: [{ port: 443 }, { port: 8443 }, { port: 6443 }] });
    expect(cp.spec.egress[1].to).toHaveLength(3);
    // Quoted as the chart's `quote` does; the same numbers vCluster reads from config.yaml.
    const quota = find(objects, 'ResourceQuota', 'vc-vcluster');
    expect(quota.metadata.labels).toMatchObject(labels);
    expect(quota.spec.hard).toMatchObject({ 'count/pods': '20', 'limits.memory': '40Gi', 'services.nodeports': '0' });
    expect(Object.keys(quota.spec.hard)).toHaveLength(15);
    const c = configOf(objects);
    expect(Object.keys(c.policies.resourceQuota.quota)).toHaveLength(15);
    expect(find(objects, 'LimitRange', 'vc-vcluster').spec).toEqual({
      limits: [
        {
          default: { cpu: '1', 'ephemeral-storage': '8Gi', memory: '512Mi' },
          defaultRequest: { cpu: '100m', 'ephemeral-storage': '3Gi', memory: '128Mi' },
          type: 'Container',
        },
      ],
    });
  });

  test("merging is Helm's: maps merge, lists and scalars replace, the defaults are not modified", () => {
    const before = JSON.stringify(VCLUSTER_CHART_DEFAULTS);
    const merged = mergeValues(VCLUSTER_CHART_DEFAULTS, {
      controlPlane: { proxy: { extraSANs: ['a'] }, distro: { k8s: { apiServer: { extraArgs: ['--x'] } } } },
    }) as any;
    expect(merged.controlPlane.proxy).toEqual({ bindAddress: '0.0.0.0', extraSANs: ['a'], port: 8443 });
    expect(merged.controlPlane.distro.k8s.apiServer).toEqual({ command: [], enabled: true, extraArgs: ['--x'] });
    expect(JSON.stringify(VCLUSTER_CHART_DEFAULTS)).toBe(before);
  });
});

// The chart's own render for the example's values (helm template of tag v0.26.1, kept in test/fixtures): every
// leaf must be equal, apart from the differences listed here with their reason.
const REFERENCE = path.resolve(__dirname, 'fixtures/vcluster-0.26.1-chart-config.yaml');
const INTENDED: Record<string, string> = {
  'controlPlane.distro.k8s.version': 'deprecated; the binaries come from distro.k8s.image (the chart default tag)',
  'controlPlane.statefulSet.image.repository': 'the OSS build of the same release (vcluster-oss), no pro features',
  'controlPlane.statefulSet.image.tag': 'pinned instead of the chart version implied by an empty tag',
  'policies.networkPolicy.enabled': 'on: tenant pods run on the host (security review H3)',
  'policies.resourceQuota.enabled': 'on instead of auto (security review H3)',
  'policies.limitRange.enabled': 'on instead of auto (security review H3)',
  telemetry: 'off on purpose (the render shows none; the chart default is on)',
  'telemetry.enabled': 'off on purpose (the render shows none; the chart default is on)',
};
test('the example plane cp3: every leaf equals the chart render, apart from the listed reasons', () => {
  const app = new App();
  buildExamplePlatform(app);
  const cp3 = app.node.findChild('cp3') as VClusterControlPlane;
  const ours = leaves(cp3.config);
  const chart = leaves(parse(fs.readFileSync(REFERENCE, 'utf8')));
  const differing = [...new Set([...Object.keys(ours), ...Object.keys(chart)])]
    .filter((k) => JSON.stringify(ours[k]) !== JSON.stringify(chart[k]))
    .filter((k) => !(k in INTENDED))
    .map((k) => `${k}: ours ${JSON.stringify(ours[k])}, chart ${JSON.stringify(chart[k])}`);
  expect(differing).toEqual([]);
  expect(Object.keys(chart).length).toBeGreaterThan(300);
});

// The list-watch under every runtime part (controller, materializer, activator) on a real kube-apiserver whose watches
// end every 4-8 s (--min-request-timeout=4; 30-60 min by default): a watch the server ends is resumed where it left
// off, with no re-list; after an API server restart the consumer hears each change once, and nothing twice.
import { KubeClient } from '../../lib/kube/client';
import { apiserverRequests, ClusterState, kubectl, loadState, startCluster, TestCluster, waitFor } from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED list-watch tests: ${state.skipped}`);

suite('list-watch on a real API server', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster(state, 'lwhost', [], ['--min-request-timeout=4']);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  /** Configmap requests of `verb` the server has served. */
  const requests = (verb: string) => apiserverRequests(cluster, { verb, resource: 'configmaps' });

  test('a watch the server ends is resumed without a re-list; a restart tells each change once', async () => {
    const k = (args: string[]) => kubectl(cluster, args);
    k(['create', 'namespace', 'lw']);
    for (const n of ['a', 'b']) k(['-n', 'lw', 'create', 'configmap', n]);
    const events: string[] = [];
    const client = KubeClient.fromFile(cluster.kubeconfig);
    const abort = new AbortController();
    let synced = 0;
    const lists0 = requests('LIST');
    client.runListWatch(
      '/api/v1/namespaces/lw/configmaps',
      (type, obj) => events.push(`${type} ${obj.metadata.name}`),
      () => synced++,
      () => undefined,
      abort.signal,
    );
    try {
      await waitFor('first list', () => synced === 1);
      const watches0 = requests('WATCH');
      // Long enough for the server to end the watch at least twice.
      await new Promise((r) => setTimeout(r, 18_000));
      k(['-n', 'lw', 'create', 'configmap', 'c']);
      await waitFor('c seen', () => events.includes('ADDED c'));
      expect(requests('WATCH')).toBeGreaterThanOrEqual(watches0 + 2);
      // One list in all: each ended watch went on from its last resourceVersion.
      expect(requests('LIST') - lists0).toBe(1);
      expect(events).toEqual(['ADDED a', 'ADDED b', 'ADDED c']);

      await cluster.restartApiserver();
      k(['-n', 'lw', 'delete', 'configmap', 'b']);
      k(['-n', 'lw', 'create', 'configmap', 'd']);
      await waitFor('d seen', () => events.includes('ADDED d'), 60_000);
      await waitFor('b gone', () => events.includes('DELETED b'), 60_000);
      // Whether the watch resumed or the list ran again, a and c were not told again.
      expect(events.sort()).toEqual(['ADDED a', 'ADDED b', 'ADDED c', 'ADDED d', 'DELETED b']);
    } finally {
      abort.abort();
      client.close();
    }
  }, 180_000);
});

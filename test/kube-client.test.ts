// The client re-reads its credentials every minute (rotated service-account tokens). That must not cut the requests
// in flight: it once destroyed its connection pool, and a thousand-plane controller lost requests every minute.
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { KubeClient, WatchedSet } from '../lib/kube/client';

let server: http.Server;
let kubeconfig: string;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-client-'));

beforeAll(async () => {
  // Answers every request after 200 ms, so requests are still in flight when the clock moves on.
  server = http.createServer((req, res) => {
    setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Status"}'), 200);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "http://127.0.0.1:' + port + '", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('requests in flight survive the minute-ly re-read of the credentials', async () => {
  const client = KubeClient.fromFile(kubeconfig);
  const realNow = Date.now;
  let skew = 0;
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
  try {
    const first = Array.from({ length: 20 }, () => client.request('GET', '/api/v1'));
    await new Promise((r) => setTimeout(r, 50)); // all 20 are on the wire now
    skew = 61_000; // the next request re-reads the credentials
    const second = Array.from({ length: 20 }, () => client.request('GET', '/api/v1'));
    const results = await Promise.allSettled([...first, ...second]);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  } finally {
    spy.mockRestore();
    client.close();
  }
});

describe('WatchedSet: what a re-list tells a consumer that has seen the earlier events', () => {
  const cm = (name: string, rv: string, ns = 'a') => ({
    metadata: { name, namespace: ns, uid: `u-${name}`, resourceVersion: rv },
  });

  test('the first list tells every object as ADDED', () => {
    const set = new WatchedSet();
    expect(set.relist([cm('x', '1'), cm('y', '2')])).toEqual([
      ['ADDED', cm('x', '1')],
      ['ADDED', cm('y', '2')],
    ]);
  });

  test('a re-list tells a changed or new object as ADDED, one gone meanwhile as DELETED, an unchanged one not at all', () => {
    const set = new WatchedSet();
    set.relist([cm('x', '1'), cm('y', '2'), cm('z', '3')]);
    set.saw('MODIFIED', cm('y', '5'));
    set.saw('ADDED', cm('w', '6'));
    set.saw('DELETED', cm('z', '7'));
    // Meanwhile (no watch): y changed again, x and w unchanged, w deleted, v created; the same name in another
    // namespace is another object.
    expect(set.relist([cm('x', '1'), cm('y', '8'), cm('v', '9'), cm('x', '10', 'b')])).toEqual([
      ['ADDED', cm('y', '8')],
      ['ADDED', cm('v', '9')],
      ['ADDED', cm('x', '10', 'b')],
      ['DELETED', { apiVersion: undefined, kind: undefined, metadata: { name: 'w', namespace: 'a', uid: 'u-w' } }],
    ]);
    // Nothing changed since: nothing to tell.
    expect(set.relist([cm('x', '1'), cm('y', '8'), cm('v', '9'), cm('x', '10', 'b')])).toEqual([]);
  });

  test('an object without a resourceVersion is always told', () => {
    const set = new WatchedSet();
    const bare = { metadata: { name: 'x', namespace: 'a' } };
    set.relist([bare]);
    expect(set.relist([bare])).toEqual([['ADDED', bare]]);
  });
});

// kflex in process through its Io seam: parsing, help, usage errors and kubeconfig errors, on a machine without a
// cluster or Go. test/cluster/kflex.test.ts runs the built binary against real API servers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { kflex } from '../lib/cli/kflex';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await kflex(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

const COMMANDS = ['init', 'create', 'delete', 'list', 'sleep', 'wake', 'ctx', 'adopt', 'config', 'version'];

test('no arguments: the command list on stdout, exit 2; --help exits 0', async () => {
  const none = await run();
  expect(none.code).toBe(2);
  for (const c of COMMANDS) expect(none.out).toMatch(new RegExp(`^  ${c} `, 'm'));
  expect((await run('--help')).code).toBe(0);
});

test('every command has --help with its synopsis and flags', async () => {
  for (const c of COMMANDS) {
    const r = await run(c, '--help');
    expect({ c, code: r.code, err: r.err }).toEqual({ c, code: 0, err: '' });
    expect(r.out).toMatch(new RegExp(`kflex ${c}`));
    expect(r.out).toMatch(/--kubeconfig/);
  }
  expect((await run('create', '--help')).out).toMatch(/--kube-version[\s\S]*--replicas/);
});

test('--version prints the KubeFlex-compatible version with ours as build metadata', async () => {
  expect(await run('--version')).toEqual({
    code: 0,
    out: 'Kubeflex version: v0.9.3+cdk8s-kubeflex.0.1.0 2026-12-01\n',
    err: '',
  });
});

test.each([
  [['nope'], /unknown command "nope"/],
  [['create'], /the control plane name is required/],
  [['create', 'a', 'b'], /unexpected argument b/],
  [['create', 'a', '--type', 'ocm'], /--type ocm is not a control-plane type \(one of k8s, k3s, vcluster, host\)/],
  [['create', 'a', '--type', 'external'], /use kflex adopt/],
  [['create', 'a', '--backend-type', 'dedicated'], /only "shared" is supported/],
  [['create', 'a', '--timeout', 'soon'], /timeout/],
  [['create', 'a', '--set', 'novalue'], /--set novalue: expected name=value/],
  [['create', 'a', '--replicas', 'two'], /--replicas two: must be a whole number/],
  [['create', 'a', '--type', 'k3s', '--kube-version', '1.33'], /apply to --type k8s only, not k3s/],
  [['create', 'a', '--no-such-flag'], /no-such-flag/],
  [['list', '--verbosity', 'loud'], /--verbosity loud is not a non-negative integer/],
])('usage error, exit 2, one line on stderr: kflex %j', async (argv, message) => {
  const r = await run(...(argv as string[]));
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err).toMatch(message);
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(/^Error: /);
});

test('a missing kubeconfig is a one-line error naming the file, exit 1', async () => {
  const missing = path.join(os.tmpdir(), `kflex-none-${process.pid}`, 'config');
  const r = await run('list', '--kubeconfig', missing);
  expect(r.code).toBe(1);
  expect(r.err).toBe(`Error: kubeconfig ${missing} does not exist\n`);
});

test('a kubeconfig whose current context is missing is refused before any request', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-cli-'));
  try {
    const file = path.join(dir, 'config');
    fs.writeFileSync(
      file,
      'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\ncurrent-context: gone\n',
    );
    const r = await run('list', '--kubeconfig', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: .*gone/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

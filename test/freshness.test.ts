// Generated files are current: crds/ from lib/crds.ts, imports/ from crds/ (what `npm run import` writes).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateImports, importSources } from '../scripts/import';
import { CRDS_FILE, crdsYaml } from '../scripts/write-crds';

const IMPORTS = path.resolve(__dirname, '../imports');

test('crds/ is what lib/crds.ts generates (run `npm run import` when this fails)', () => {
  expect(fs.readFileSync(CRDS_FILE, 'utf8')).toBe(crdsYaml());
});

test('imports/ is what `cdk8s import` generates from the CRDs cdk8s.yaml lists (run `npm run import` when this fails)', () => {
  expect(importSources()).toEqual([
    'crds/tenancy.kflex.kubestellar.org.yaml',
    'crds/gateway-api-v1.6.3/gateway.networking.k8s.io_tlsroutes.yaml',
  ]);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-imports-'));
  try {
    generateImports(out);
    const generated = fs.readdirSync(out).sort();
    expect(generated).toEqual(fs.readdirSync(IMPORTS).sort());
    for (const f of generated) {
      const fresh = fs.readFileSync(path.join(out, f), 'utf8') === fs.readFileSync(path.join(IMPORTS, f), 'utf8');
      expect({ file: f, fresh }).toEqual({ file: f, fresh: true });
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 120_000);

// A repository of tenants only: the hosting install lives in the platform's repository and cluster. Its settings come
// from the data of its ConfigMap kubeflex-config (kubeflex-config.yaml here, as the platform synthesized it); the
// hosting install itself is never instantiated, so this synthesizes only the tenants and the hooks they use.
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'cdk8s';
import { parse } from 'yaml';
import { KubeflexHosting, runSynth } from '../../lib';
import { addExampleHooks, addExampleTenants } from '../example-tenants';

export function buildTenants(app: App): void {
  const configMap = parse(fs.readFileSync(path.join(__dirname, 'kubeflex-config.yaml'), 'utf8'));
  const hosting = KubeflexHosting.fromConfig(app, 'hosting', { config: configMap.data });
  addExampleHooks(hosting);
  addExampleTenants(app, hosting);
}

if (require.main === module) {
  runSynth(buildTenants, path.join(__dirname, 'dist'));
}

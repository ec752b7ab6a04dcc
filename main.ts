// The example platform: the hosting install, one control plane of each type, and one hook used by two of them.
import { App } from 'cdk8s';
import { addExampleHooks, addExampleTenants } from './examples/example-tenants';
import { KubeflexHosting, runSynth } from './lib';

export function buildExamplePlatform(app: App): void {
  const hosting = new KubeflexHosting(app, 'hosting', { domain: 'localtest.me', externalPort: 9443, activator: true });
  addExampleHooks(hosting);
  addExampleTenants(app, hosting);
}

if (require.main === module) {
  runSynth(buildExamplePlatform);
}

import * as os from 'os';
import * as path from 'path';
import { App, Chart, Testing } from 'cdk8s';
import { KubeflexConfigError, KubeflexHosting, KubeflexHostingProps } from '../lib';

/**
 * An app for tests that render charts in memory (`Testing.synth`). `Testing.app()` makes a new temporary directory
 * on every call and nothing removes it: a full test run left ~1,500 empty directories in /tmp. This one names a
 * single directory, made only if a test calls `app.synth()`.
 */
export function testApp(): App {
  return new App({ outdir: path.join(os.tmpdir(), 'kflex-test-app-output') });
}

/** A fresh app with a hosting install, the starting point of most construct tests. */
export function setup(props: KubeflexHostingProps = {}): { app: App; hosting: KubeflexHosting } {
  const app = testApp();
  return { app, hosting: new KubeflexHosting(app, 'hosting', props) };
}

/** Rendered objects of a chart. */
export function synth(chart: Chart): any[] {
  return Testing.synth(chart);
}

/** The one object of a kind and name (fails the test when absent or ambiguous). */
export function find(objects: any[], kind: string, name: string): any {
  const found = objects.filter((o) => o.kind === kind && o.metadata?.name === name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}/${name}, found ${found.length}`);
  return found[0];
}

/** Asserts that `fn` throws a KubeflexConfigError whose message names construct, prop and value. */
export function expectConfigError(fn: () => unknown, ...parts: string[]): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KubeflexConfigError);
  for (const p of parts) expect((error as Error).message).toContain(p);
}

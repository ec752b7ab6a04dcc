import * as fs from 'fs';
import * as path from 'path';
import { App, YamlOutputType } from 'cdk8s';
import { KubeflexConfigError } from './errors';

/**
 * Builds and synthesizes an app all-or-nothing: the app is written to a staging directory beside `outdir` and
 * moved into place only when every chart rendered, so bad input never leaves a half-written `dist/`.
 * Returns the files written. Throws (after cleaning up) on any error.
 */
export function synthesizeAtomically(
  build: (app: App) => void,
  outdir: string = process.env.CDK8S_OUTDIR ?? 'dist',
): string[] {
  const target = path.resolve(outdir);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staging = fs.mkdtempSync(`${target}.staging-`);
  try {
    const app = new App({ outdir: staging, yamlOutputType: YamlOutputType.FILE_PER_CHART });
    build(app);
    app.synth();
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(staging, target);
    return fs
      .readdirSync(target)
      .sort()
      .map((f) => path.join(target, f));
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Entry point for `main.ts`: synthesizes atomically and turns a bad-input error into one clear line on stderr
 * and exit code 1 (no stack trace for a user mistake).
 */
export function runSynth(build: (app: App) => void, outdir?: string): void {
  try {
    synthesizeAtomically(build, outdir);
  } catch (err) {
    if (err instanceof KubeflexConfigError) {
      process.stderr.write(`synth failed: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (err instanceof Error && /^Validation failed/.test(err.message)) {
      process.stderr.write(`synth failed: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

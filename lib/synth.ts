import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, App, AppProps, Chart, DependencyGraph, Names, YamlOutputType } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { KubeflexConfigError } from './errors';
import { yamlDocuments } from './yaml-emit';

/**
 * The sub-directory of the output that holds what every other file needs to exist first: CustomResourceDefinitions
 * and Namespaces. kubectl maps every kind of one invocation before it applies anything, so CRDs and their objects
 * cannot share one `kubectl apply`; namespaces go first so that files sort freely. `kubectl apply -f dist/` (not
 * recursive) skips this directory, so the README's one line applies it first, waits, then applies the rest.
 */
export const BASE_DIR = '00-base';
const BASE_KINDS = new Set(['CustomResourceDefinition', 'Namespace']);

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
    synthFilePerChart(app);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(staging, target);
    return listOutput(target);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A cdk8s App whose `synth()` (what `cdk8s synth` runs through your `app` command) writes output that installs with
 * the README's one line: CRDs and Namespaces in `00-base/`, the rest one file per chart, all-or-nothing (a staging
 * directory moved into place) and in linear time. A plain `App` writes CRDs into the hosting chart's file, which one
 * `kubectl apply -f dist/` cannot install (kubectl maps every kind before it applies the CRDs).
 */
export class KubeflexApp extends App {
  public constructor(props: Omit<AppProps, 'yamlOutputType'> = {}) {
    super({ ...props, yamlOutputType: YamlOutputType.FILE_PER_CHART });
  }

  public override synth(): void {
    const target = path.resolve(this.outdir);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const staging = fs.mkdtempSync(`${target}.staging-`);
    // cdk8s reads the output directory from this field; it points at the staging directory while rendering.
    const self = this as { outdir: string };
    self.outdir = staging;
    try {
      synthFilePerChart(this);
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(staging, target);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw err;
    } finally {
      self.outdir = target;
    }
  }
}

/** The files of a synthesized output directory: those of `00-base/` first, then the rest, each group sorted. */
export function listOutput(dir: string): string[] {
  const base = path.join(dir, BASE_DIR);
  const files = (d: string) =>
    fs.existsSync(d)
      ? fs
          .readdirSync(d)
          .filter((f) => f.endsWith('.yaml'))
          .sort()
          .map((f) => path.join(d, f))
      : [];
  return [...files(base), ...files(dir)];
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

/**
 * Same output as `app.synth()` with one file per chart, in linear time. cdk8s's `Chart.toJson()` validates and
 * resolves dependencies of the whole app on every call, which is quadratic with one chart per tenant (28 s for
 * 1,000 tenants); here that whole-app work runs once, through the first chart, and the rest render directly.
 */
export function synthFilePerChart(app: App): void {
  const charts = app.charts;
  if (charts.length === 0) return;
  fs.mkdirSync(app.outdir, { recursive: true });
  const first = charts[0].toJson();
  if (charts.some((c) => c.node.dependencies.length > 0)) {
    // Charts depending on each other get indexed file names from cdk8s; leave that case to cdk8s itself (App's own
    // synth, also when `app` is a KubeflexApp).
    App.prototype.synth.call(app);
    for (const f of fs.readdirSync(app.outdir).filter((x) => x.endsWith(app.outputFileExtension))) {
      const file = path.join(app.outdir, f);
      saveChart(
        app.outdir,
        f,
        parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()),
      );
    }
    return;
  }
  charts.forEach((chart, i) => {
    const objects =
      i === 0
        ? first
        : new DependencyGraph(chart.node)
            .topology()
            .filter((x): x is ApiObject => x instanceof ApiObject && Chart.of(x) === chart)
            .map((x) => x.toJson());
    saveChart(app.outdir, `${Names.toDnsLabel(chart)}${app.outputFileExtension}`, objects);
  });
}

/** Writes a chart's CRDs and Namespaces to `00-base/<file>` and the rest to `<file>`, keeping their order. */
function saveChart(outdir: string, file: string, objects: any[]): void {
  const base = objects.filter((o) => BASE_KINDS.has(o?.kind));
  const rest = objects.filter((o) => !BASE_KINDS.has(o?.kind));
  if (base.length) {
    fs.mkdirSync(path.join(outdir, BASE_DIR), { recursive: true });
    fs.writeFileSync(path.join(outdir, BASE_DIR, file), yamlDocuments(base), { encoding: 'utf8' });
  }
  const main = path.join(outdir, file);
  if (rest.length) fs.writeFileSync(main, yamlDocuments(rest), { encoding: 'utf8' });
  else fs.rmSync(main, { force: true });
}

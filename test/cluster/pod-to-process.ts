// Runs the containers of a synthesized Deployment as local processes: the real binaries with the exact command and
// args we synthesize, mounted Secrets written to temp dirs, `$(VAR)` env expansion as the kubelet does it, and
// in-cluster addresses mapped to loopback, and containers restarted with back-off as the kubelet does under
// `restartPolicy: Always` (a kube-apiserver whose storage was slow at start-up exits; in a pod it comes back).
// This is how a tenant "boots from its own spec" without a kubelet.
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { KUBERNETES_VERSION } from '../../lib/versions';
import { killAll, startProcess } from './harness';

/** A container run as a process, restarted after it exits according to the pod's restartPolicy. */
export class ContainerProcess {
  /** How many times the container was restarted. */
  public restarts = 0;
  private child: ChildProcess;
  private stopped = false;
  private timer?: NodeJS.Timeout;

  public constructor(
    private readonly name: string,
    private readonly launch: () => ChildProcess,
    private readonly logFile: string,
    private readonly restartPolicy: string,
    private readonly onRestart?: (pid: number) => void,
  ) {
    this.child = this.spawn();
  }

  /** Pid of the current process. */
  public get pid(): number {
    return this.child.pid!;
  }

  /** Stops the container for good (no restart). */
  public async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await killAll([this.child.pid!]);
  }

  private spawn(): ChildProcess {
    const child = this.launch();
    child.once('exit', (code, signal) => {
      if (this.stopped) return;
      if (this.restartPolicy === 'Never' || (this.restartPolicy === 'OnFailure' && code === 0)) return;
      // The kubelet backs off 10 s doubling to 5 min; the same shape, scaled down for tests.
      const delay = Math.min(1000 * 2 ** this.restarts, 16_000);
      this.restarts++;
      fs.appendFileSync(
        this.logFile,
        `\n### pod-to-process: container ${this.name} exited (code ${code}, signal ${signal}); ` +
          `restart ${this.restarts} in ${delay} ms (restartPolicy ${this.restartPolicy})\n`,
      );
      this.timer = setTimeout(() => {
        if (this.stopped) return;
        this.child = this.spawn();
        this.onRestart?.(this.child.pid!);
      }, delay);
    });
    return child;
  }
}

export interface PodRunOptions {
  /** Directory holding the binaries named like the container commands (kube-apiserver, kine, ...). */
  readonly binDir: string;
  /** Content of each mounted Secret/ConfigMap, by object name then key. */
  readonly volumeData: Record<string, Record<string, string>>;
  /** Values of secretKeyRef env vars, by `<secret>/<key>`. */
  readonly secretValues: Record<string, string>;
  /** String replacements applied to args and env values (in-cluster address -> loopback address). */
  readonly rewrite: [string, string][];
  /** Where mounted volumes are materialized. */
  readonly rootDir: string;
  readonly logDir: string;
  /** Extra args per container (e.g. bind to loopback where the pod would bind to its own IP). */
  readonly extraArgs?: Record<string, string[]>;
  /** Binary used for a container without command (its image entrypoint), by container name. */
  readonly entrypoints?: Record<string, string>;
}

/** Starts every container of `podSpec`; returns the supervised processes by container name. */
export function runPod(
  podSpec: any,
  opts: PodRunOptions,
  prefix: string,
  onRestart?: (container: string, pid: number) => void,
): Record<string, ContainerProcess> {
  const volumes = new Map<string, any>((podSpec.volumes ?? []).map((v: any) => [v.name, v]));
  const out: Record<string, ContainerProcess> = {};
  // Every container's volumes are checked before any process starts, so a bad spec leaves no process behind.
  for (const c of podSpec.containers) {
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.get(m.name);
      const source = v?.secret?.secretName ?? v?.configMap?.name;
      if (source && !opts.volumeData[source]) throw new Error(`no data for volume source ${source}`);
    }
  }
  for (const c of podSpec.containers) {
    const mounts: [string, string][] = [];
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.get(m.name);
      const source = v?.secret?.secretName ?? v?.configMap?.name;
      const dir = path.join(opts.rootDir, prefix, c.name, m.mountPath);
      fs.mkdirSync(dir, { recursive: true });
      if (source) {
        const data = opts.volumeData[source];
        if (!data) throw new Error(`no data for volume source ${source}`);
        const items: { key: string; path: string }[] =
          (v.secret ?? v.configMap).items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
        for (const it of items) fs.writeFileSync(path.join(dir, it.path), data[it.key], { mode: 0o600 });
      }
      mounts.push([m.mountPath, dir]);
    }
    const env: Record<string, string> = {};
    const expand = (s: string) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n) => (n in env ? env[n] : m));
    const rewrite = (s: string) => {
      let r = s;
      for (const [from, to] of opts.rewrite) r = r.split(from).join(to);
      // Longest mount path first, so /etc/kubernetes/pki wins over /etc/kubernetes.
      for (const [from, to] of [...mounts].sort((a, b) => b[0].length - a[0].length))
        r = r.split(`${from}/`).join(`${to}/`);
      return r;
    };
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef) {
        const k = `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`;
        if (!(k in opts.secretValues)) throw new Error(`no value for secret ${k}`);
        env[e.name] = opts.secretValues[k];
      } else if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') {
        env[e.name] = '127.0.0.1';
      } else if (e.valueFrom?.resourceFieldRef) {
        // The Downward API: the container's own request or limit, in units of the divisor (memory in bytes here).
        const ref = e.valueFrom.resourceFieldRef;
        const [kind, res] = ref.resource.split('.');
        const q = c.resources?.[kind]?.[res];
        if (q === undefined) throw new Error(`container ${c.name} has no ${ref.resource} for env ${e.name}`);
        env[e.name] = String(Math.ceil(quantity(String(q)) / quantity(String(ref.divisor ?? '1'))));
      } else {
        env[e.name] = rewrite(expand(e.value ?? ''));
      }
    }
    const command: string[] = c.command ?? [opts.entrypoints?.[c.name] ?? c.name];
    const args = [...(c.args ?? []).map((a: string) => rewrite(expand(a))), ...(opts.extraArgs?.[c.name] ?? [])];
    // An image of another release than the default binaries (kubernetesVersion) runs the binary built for its tag,
    // `<binDir>/<tag>/<command>` (scripts/prepare-binaries.sh); a missing one fails instead of silently running
    // the default release.
    const tag = /:(v1\.\d+\.\d+)$/.exec(c.image ?? '')?.[1];
    const tagged = tag ? path.join(opts.binDir, tag, path.basename(command[0])) : undefined;
    const bin = tagged && tag !== KUBERNETES_VERSION ? tagged : path.join(opts.binDir, path.basename(command[0]));
    if (!fs.existsSync(bin)) throw new Error(`container ${c.name}: no binary ${bin} for image ${c.image}`);
    const name = `${prefix}-${c.name}`;
    out[c.name] = new ContainerProcess(
      name,
      () => startProcess(name, bin, [...command.slice(1), ...args], opts.logDir, env),
      path.join(opts.logDir, `${name}.log`),
      podSpec.restartPolicy ?? 'Always',
      (pid) => onRestart?.(c.name, pid),
    );
  }
  return out;
}

/** A Kubernetes quantity (binary or decimal suffix, or millis) as a number of base units. */
export function quantity(q: string): number {
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  const mult: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

// What the long-running helpers (materializer, activator) share: the hosting cluster's client from --kubeconfig, the
// --health-port flag, a /healthz and /readyz server, running until SIGTERM or SIGINT, and their exit codes (2 for a
// usage error, 1 for a failure, both with the program's name on stderr).
import * as http from 'http';
import { UsageError } from './args';
import { KubeClient } from './client';

/** A helper's long-running part. */
export interface Daemon {
  /** True once its watches have listed: /readyz answers 200 from then on. */
  readonly isSynced: boolean;
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

/** `--health-port` (digits only; 0 = no health server). */
export function healthPortFlag(value: string | undefined, fallback: number): number {
  const hp = value ?? String(fallback);
  if (!/^\d+$/.test(hp)) throw new UsageError(`--health-port=${hp} is not a port number`);
  return Number(hp);
}

/** The hosting cluster's client from `--kubeconfig`, else in-cluster, $KUBECONFIG or ~/.kube/config. */
export function hostingClient(flag: string | undefined): KubeClient {
  const kubeconfig = flag ?? process.env.KUBECONFIG;
  try {
    const client = KubeClient.fromFile(kubeconfig);
    if (!client.server) throw new Error('no current cluster');
    return client;
  } catch (e) {
    throw new UsageError(`cannot load kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: ${(e as Error).message}`);
  }
}

/** Parses with `parse` (2 and the message on a UsageError), then serves health and runs `daemon` until a signal. */
export async function runDaemon(
  program: string,
  parse: () => { daemon: Daemon; healthPort: number } | number,
): Promise<number> {
  let parsed: { daemon: Daemon; healthPort: number } | number;
  try {
    parsed = parse();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${program}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (typeof parsed === 'number') return parsed;
  const { daemon, healthPort } = parsed;
  const server = healthPort
    ? http
        .createServer((req, res) => {
          const ok = req.url === '/healthz' || (req.url === '/readyz' && daemon.isSynced);
          res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'not ready');
        })
        .listen(healthPort)
    : undefined;
  await daemon.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server?.close();
  await daemon.stop();
  return 0;
}

/** Runs `main` as the process's entry point: its result is the exit code; a failure exits 1 with its message. */
export function runAsProgram(program: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`${program}: ${e.message}\n`);
      process.exit(1);
    },
  );
}

#!/usr/bin/env node
// kubeflex-materializer: turns ControlPlanes created by KubeFlex's own clients into running tenants with our
// constructs. In the cluster it uses its ServiceAccount; locally any kubeconfig.
import * as http from 'http';
import { parseFlags, UsageError } from '../kube/args';
import { parseDuration } from '../kube/args';
import { KubeClient } from '../kube/client';
import { jsonLogger } from '../kube/log';
import { Materializer } from './materializer';

const USAGE = `Usage: kubeflex-materializer [flags]

Serves ControlPlanes that carry no mark of our synth (created with KubeFlex's kflex, kubectl or a chart): builds
their tenant with the cdk8s-kubeflex constructs from the ControlPlane's spec, the hosting configuration
(ConfigMap kubeflex-system/kubeflex-config) and the PostCreateHooks it uses, and server-side applies it.

Flags:
  --kubeconfig PATH   kubeconfig of the hosting cluster (default: in-cluster, then $KUBECONFIG, ~/.kube/config)
  --health-port N     serve /healthz and /readyz on this port (default 8082; 0 = off)
  --resync DURATION   full resync period (default 5m)
  --help              this text
`;

export async function main(argv: string[]): Promise<number> {
  let m: Materializer;
  let healthPort: number;
  try {
    const { flags, positional } = parseFlags(argv, {
      strings: ['kubeconfig', 'health-port', 'resync'],
      booleans: ['help'],
    });
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const hp = (flags['health-port'] as string | undefined) ?? '8082';
    if (!/^\d+$/.test(hp)) throw new UsageError(`--health-port=${hp} is not a port number`);
    healthPort = Number(hp);
    const kubeconfig = (flags.kubeconfig as string | undefined) ?? process.env.KUBECONFIG;
    let client: KubeClient;
    try {
      client = KubeClient.fromFile(kubeconfig);
      if (!client.server) throw new Error('no current cluster');
    } catch (e) {
      throw new UsageError(`cannot load kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: ${(e as Error).message}`);
    }
    m = new Materializer({
      client,
      log: jsonLogger('info'),
      resyncMs: parseDuration('resync', (flags.resync as string | undefined) ?? '5m'),
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kubeflex-materializer: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  m.start();
  const server = healthPort
    ? http
        .createServer((req, res) => {
          const ok = req.url === '/healthz' || (req.url === '/readyz' && m.isSynced);
          res.writeHead(ok ? 200 : 503).end(ok ? 'ok' : 'not ready');
        })
        .listen(healthPort)
    : undefined;
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  server?.close();
  await m.stop();
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`kubeflex-materializer: ${e.message}\n`);
      process.exit(1);
    },
  );
}

#!/usr/bin/env node
// kubeflex-materializer: turns ControlPlanes created by KubeFlex's own clients into running tenants with our
// constructs. In the cluster it uses its ServiceAccount; locally any kubeconfig.
import { parseDuration, parseFlags, UsageError } from '../kube/args';
import { healthPortFlag, hostingClient, runAsProgram, runDaemon } from '../kube/daemon';
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

export function main(argv: string[]): Promise<number> {
  return runDaemon('kubeflex-materializer', () => {
    const { flags, positional } = parseFlags(argv, {
      strings: ['kubeconfig', 'health-port', 'resync'],
      booleans: ['help'],
    });
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const healthPort = healthPortFlag(flags['health-port'] as string | undefined, 8082);
    const client = hostingClient(flags.kubeconfig as string | undefined);
    const daemon = new Materializer({
      client,
      log: jsonLogger('info'),
      resyncMs: parseDuration('resync', (flags.resync as string | undefined) ?? '5m'),
    });
    return { daemon, healthPort };
  });
}

if (require.main === module) runAsProgram('kubeflex-materializer', main);

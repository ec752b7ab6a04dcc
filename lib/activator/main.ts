#!/usr/bin/env node
// kubeflex-activator: holds the clients of sleeping control planes while they wake, then passes them through. In the
// cluster it uses its ServiceAccount and its pod IP (env POD_IP); locally any kubeconfig and address.
import { isIP } from 'net';
import { parseDuration, parseFlags, UsageError } from '../kube/args';
import { healthPortFlag, hostingClient, runAsProgram, runDaemon } from '../kube/daemon';
import { jsonLogger } from '../kube/log';
import { Activator } from './activator';

const USAGE = `Usage: kubeflex-activator [flags]

For each sleeping ControlPlane (annotation kflex.kubestellar.org/sleeping=true), listens on a port of its own and
adds an EndpointSlice with that port to the plane's API Service. The first connection wakes the plane, is held until
the plane's own endpoint is ready and is then passed through unchanged (TLS stays the plane's own).

Flags:
  --kubeconfig PATH      kubeconfig of the hosting cluster (default: in-cluster, then $KUBECONFIG, ~/.kube/config)
  --pod-ip ADDRESS       the address its EndpointSlices point at (default: $POD_IP)
  --listen-address ADDR  where it listens (default: every address)
  --wake-timeout DUR     how long a connection is held while its plane wakes (default 120s)
  --health-port N        serve /healthz and /readyz on this port (default 8083; 0 = off)
  --help                 this text
`;

export function main(argv: string[]): Promise<number> {
  return runDaemon('kubeflex-activator', () => {
    const { flags, positional } = parseFlags(argv, {
      strings: ['kubeconfig', 'pod-ip', 'listen-address', 'wake-timeout', 'health-port'],
      booleans: ['help'],
    });
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const healthPort = healthPortFlag(flags['health-port'] as string | undefined, 8083);
    const podIp = (flags['pod-ip'] as string | undefined) ?? process.env.POD_IP ?? '';
    if (!isIP(podIp)) throw new UsageError(`--pod-ip (or POD_IP) "${podIp}" is not an IP address`);
    const listen = flags['listen-address'] as string | undefined;
    if (listen !== undefined && !isIP(listen)) throw new UsageError(`--listen-address=${listen} is not an IP address`);
    const client = hostingClient(flags.kubeconfig as string | undefined);
    const daemon = new Activator({
      client,
      log: jsonLogger('info'),
      podIp,
      listenAddress: listen,
      wakeTimeoutMs: parseDuration('wake-timeout', (flags['wake-timeout'] as string | undefined) ?? '120s'),
    });
    return { daemon, healthPort };
  });
}

if (require.main === module) runAsProgram('kubeflex-activator', main);

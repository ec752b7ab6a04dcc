// One readiness question to a starting API server, asked by the activator (when to splice a held client) and by the
// controller (when a boot slot is free).
import * as https from 'https';

/**
 * Whether the API server at `e` answers `path` (/readyz, or a /readyz that excludes some checks) with 200: anonymous,
 * as the kubelet's probe asks; nothing is sent but the path. The certificate is not checked: the answer only decides
 * when to do something that needs no trust in it (splice a client whose own TLS session then verifies the server as
 * always; give a boot slot to the next start), as the kubelet's HTTPS probe does not check it either.
 */
export function answersReadyz(e: { host: string; port: number }, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: e.host, port: e.port, path, rejectUnauthorized: false, timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

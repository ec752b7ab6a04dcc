/**
 * Local container images for the test node, built without Docker: a root filesystem assembled from our binaries
 * (and, where an image needs them, Debian's files of this machine with their shared libraries), packed as a
 * single-layer docker-archive tarball tagged with the exact name our manifests use, then imported into the node's
 * containerd. Each image reproduces what the upstream image provides that our manifests rely on; STAND_INS says
 * which upstream image each one replaces and what differs.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { IMAGES } from '../../lib/versions';

const REPO = path.resolve(__dirname, '../..');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';
export const COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.11.4';
const PG_MAJOR = '15';

interface ImageSpec {
  /** The exact name our manifests (or the node's settings) use. */
  readonly name: string;
  /** The upstream image it stands in for, and what differs. */
  readonly standsInFor: string;
  readonly entrypoint: string[];
  readonly cmd?: string[];
  readonly user?: string;
  readonly env?: string[];
  readonly workingDir?: string;
  /** Fills the root filesystem. */
  readonly fill: (root: Root) => void;
}

/** A root filesystem under construction, laid out like Debian 12 (merged /usr). */
class Root {
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'usr/lib64'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'usr/sbin'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
    for (const l of ['bin', 'sbin', 'lib', 'lib64']) fs.symlinkSync(`usr/${l}`, path.join(dir, l));
    for (const d of ['etc', 'tmp', 'var/run', 'proc', 'sys', 'dev'])
      fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
    this.write('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n');
    this.write('etc/group', 'root:x:0:\nnonroot:x:65532:\n');
    this.write('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  }

  private target(p: string): string {
    // Debian 12's /bin, /lib and /lib64 are /usr's: keep one real copy under /usr.
    const rel = p.replace(/^\/+/, '').replace(/^(bin|sbin|lib|lib64)\//, 'usr/$1/');
    return path.join(this.dir, rel);
  }

  write(p: string, content: string, mode = 0o644): void {
    const t = this.target(p);
    fs.mkdirSync(path.dirname(t), { recursive: true });
    fs.writeFileSync(t, content, { mode });
    fs.chmodSync(t, mode);
  }

  /** Copies a file (following symlinks) to `dest`, and every shared library it loads to its own path. */
  binary(src: string, dest = src): void {
    this.file(src, dest);
    let out = '';
    try {
      out = execFileSync('ldd', [src], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return; // static: nothing to add
    }
    for (const line of out.split('\n')) {
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
      if (m) this.file(m[1]);
    }
  }

  file(src: string, dest = src): void {
    const t = this.target(dest);
    if (fs.existsSync(t)) return;
    fs.mkdirSync(path.dirname(t), { recursive: true });
    fs.copyFileSync(fs.realpathSync(src), t);
    fs.chmodSync(t, fs.statSync(src).mode & 0o7777);
  }

  /** Copies a directory tree as it is (symlinks kept). */
  tree(src: string, dest = src): void {
    const t = this.target(dest);
    fs.mkdirSync(path.dirname(t), { recursive: true });
    execFileSync('cp', ['-a', src, t]);
  }

  link(target: string, p: string): void {
    const t = this.target(p);
    fs.mkdirSync(path.dirname(t), { recursive: true });
    fs.symlinkSync(target, t);
  }
}

/** The official postgres image's entry point contract, for the env and args our StatefulSet and Job use. */
const POSTGRES_ENTRYPOINT = `#!/bin/sh
# Stands in for docker-entrypoint.sh of docker.io/library/postgres: arguments that start with "-" are postgres
# options; an empty PGDATA is initialised with POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_INITDB_ARGS and accepts
# password logins from the network (host all all all scram-sha-256) on every address; any other command runs as
# given.
set -eu
case "\${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "\${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  umask 077
  pwfile=/tmp/.pgpass-init
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  # shellcheck disable=SC2086
  initdb --username="\${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --encoding=UTF8 --locale=C \${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\\nhost all all all scram-sha-256\\n' >> "$PGDATA/pg_hba.conf"
  # The official image's sample configuration listens on every address of the pod.
  printf "\\nlisten_addresses = '*'\\n" >> "$PGDATA/postgresql.conf"
fi
exec "$@"
`;

/** Every image the node runs, with the upstream image it stands in for. */
export function imageSpecs(binDir: string): ImageSpec[] {
  const bin = (b: string) => path.join(binDir, b);
  const k8sImage = (name: string, b: string): ImageSpec => ({
    name,
    standsInFor: `${name}: ${b} of the same version, built here, at /usr/local/bin on PATH (upstream: distroless)`,
    entrypoint: [],
    cmd: [`/usr/local/bin/${b}`],
    env: [`PATH=${PATH}`],
    fill: (r) => r.file(bin(b), `/usr/local/bin/${b}`),
  });
  return [
    {
      name: PAUSE_IMAGE,
      standsInFor: `${PAUSE_IMAGE}: our own program (test/node/pause) that holds the sandbox and reaps children`,
      entrypoint: ['/pause'],
      user: '65535:65535',
      fill: (r) => r.file(bin('pause'), '/pause'),
    },
    k8sImage(IMAGES.kubeApiserver, 'kube-apiserver'),
    k8sImage(IMAGES.kubeControllerManager, 'kube-controller-manager'),
    {
      name: IMAGES.kubectl,
      standsInFor: `${IMAGES.kubectl}: kubectl of the same version at /bin/kubectl, entrypoint kubectl`,
      entrypoint: ['/bin/kubectl'],
      env: [`PATH=${PATH}`, 'HOME=/tmp'],
      fill: (r) => r.file(bin('kubectl'), '/bin/kubectl'),
    },
    {
      name: IMAGES.kine,
      standsInFor: `${IMAGES.kine}: kine of the same version at /bin/kine, entrypoint kine (built without cgo: no sqlite)`,
      entrypoint: ['/bin/kine'],
      env: [`PATH=${PATH}`],
      fill: (r) => r.file(bin('kine'), '/bin/kine'),
    },
    {
      name: COREDNS_IMAGE,
      standsInFor: `${COREDNS_IMAGE}: CoreDNS of the same version at /coredns, entrypoint /coredns`,
      entrypoint: ['/coredns'],
      fill: (r) => r.file(bin('coredns'), '/coredns'),
    },
    {
      name: IMAGES.controller,
      standsInFor:
        `${IMAGES.controller}: our Dockerfile's contents (build/lib, build/imports, production node_modules, ` +
        `kubeflex-controller, kubeflex-materializer, kubeflex-activator and kubeflex-wait-for-apiserver on PATH, uid 65532) on this machine's Node.js ` +
        `${process.version} instead of node:20.19.5-bookworm-slim`,
      entrypoint: ['kubeflex-controller'],
      user: '65532:65532',
      env: [`PATH=${PATH}`, 'NODE_ENV=production'],
      workingDir: '/app',
      fill: (r) => {
        r.binary(process.execPath, '/usr/local/bin/node');
        r.binary('/usr/bin/env');
        r.file(path.join(REPO, 'package.json'), '/app/package.json');
        r.tree(path.join(REPO, 'build/lib'), '/app/build/lib');
        r.tree(path.join(REPO, 'build/imports'), '/app/build/imports');
        for (const dir of productionPackages()) r.tree(dir, `/app/${path.relative(REPO, dir)}`);
        for (const f of [
          'controller/main.js',
          'controller/wait-for-apiserver.js',
          'materializer/main.js',
          'activator/main.js',
        ])
          fs.chmodSync(path.join(r.dir, 'app/build/lib', f), 0o755);
        r.link('/app/build/lib/materializer/main.js', '/usr/local/bin/kubeflex-materializer');
        r.link('/app/build/lib/controller/main.js', '/usr/local/bin/kubeflex-controller');
        r.link('/app/build/lib/controller/wait-for-apiserver.js', '/usr/local/bin/kubeflex-wait-for-apiserver');
        r.link('/app/build/lib/activator/main.js', '/usr/local/bin/kubeflex-activator');
      },
    },
    {
      name: IMAGES.postgres,
      standsInFor:
        `${IMAGES.postgres}: Debian's PostgreSQL ${PG_MAJOR} of this machine (${pgVersion()}) under the official ` +
        `image's paths and env contract (PGDATA, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_INITDB_ARGS, user ` +
        `postgres 999, psql and pg_isready on PATH); locale C instead of en_US.utf8`,
      entrypoint: ['docker-entrypoint.sh'],
      cmd: ['postgres'],
      user: '999:999',
      env: [`PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}`, 'PGDATA=/var/lib/postgresql/data'],
      fill: (r) => {
        r.write(
          'etc/passwd',
          'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' +
            'nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n',
        );
        r.write('etc/group', 'root:x:0:\npostgres:x:999:\nnonroot:x:65532:\n');
        r.tree(`/usr/lib/postgresql/${PG_MAJOR}`);
        r.tree(`/usr/share/postgresql/${PG_MAJOR}`);
        r.tree('/usr/share/zoneinfo');
        for (const f of fs.readdirSync(`/usr/lib/postgresql/${PG_MAJOR}/bin`))
          r.binary(`/usr/lib/postgresql/${PG_MAJOR}/bin/${f}`);
        // JIT (llvmjit, ~100 MB of LLVM) is left out; PostgreSQL runs without it when the provider is absent.
        const lib = `/usr/lib/postgresql/${PG_MAJOR}/lib`;
        for (const f of fs.readdirSync(lib)) {
          if (f.startsWith('llvmjit') || f === 'bitcode') fs.rmSync(path.join(r.dir, lib, f), { recursive: true });
          else if (f.endsWith('.so')) r.binary(`${lib}/${f}`);
        }
        for (const b of ['/usr/bin/dash', '/usr/bin/mkdir', '/usr/bin/chmod', '/usr/bin/rm']) r.binary(b);
        r.link('dash', '/usr/bin/sh');
        r.write('usr/local/bin/docker-entrypoint.sh', POSTGRES_ENTRYPOINT, 0o755);
        fs.mkdirSync(path.join(r.dir, 'var/lib/postgresql/data'), { recursive: true });
        fs.mkdirSync(path.join(r.dir, 'var/run/postgresql'), { recursive: true });
      },
    },
  ];
}

function pgVersion(): string {
  try {
    return execFileSync(`/usr/lib/postgresql/${PG_MAJOR}/bin/postgres`, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return `PostgreSQL ${PG_MAJOR} (not installed)`;
  }
}

/**
 * The package directories the Dockerfile's image holds: what `npm prune --omit=dev` leaves, plus the peer
 * dependencies (cdk8s, cdk8s-plus-28, constructs; the materializer and kflex synthesize) with their dependencies.
 */
function productionPackages(): string[] {
  const ls = (args: string[]) =>
    execFileSync('npm', ['ls', '--all', '--parseable', ...args], {
      cwd: REPO,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  const peers = Object.keys(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).peerDependencies);
  const out = ls(['--omit=dev']) + '\n' + ls(peers);
  const dirs = [...new Set(out.split('\n'))]
    .filter((d) => d && d !== REPO && d.includes(`${path.sep}node_modules${path.sep}`))
    .sort();
  // A nested package is inside an outer one that is copied whole.
  return dirs.filter((d, i) => !dirs.slice(0, i).some((o) => d.startsWith(`${o}/`)));
}

const sha256File = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** Builds `spec` as a docker-archive tarball in `workDir`; returns its path. */
export function buildImage(spec: ImageSpec, workDir: string): string {
  const dir = fs.mkdtempSync(path.join(workDir, 'image-'));
  const root = new Root(path.join(dir, 'rootfs'));
  spec.fill(root);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root.dir, '-cf', `${out}/layer.tar`, '.']);
  const diffId = `sha256:${sha256File(`${out}/layer.tar`)}`;
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {
      Entrypoint: spec.entrypoint.length ? spec.entrypoint : null,
      Cmd: spec.cmd ?? null,
      Env: spec.env ?? [`PATH=${PATH}`],
      User: spec.user ?? '',
      WorkingDir: spec.workingDir ?? '/',
      Labels: { 'org.opencontainers.image.description': `kflex test stand-in for ${spec.standsInFor}` },
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'test/node/images.ts' }],
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  fs.writeFileSync(path.join(out, configName), config);
  fs.writeFileSync(
    path.join(out, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: [spec.name], Layers: ['layer.tar'] }]),
  );
  const tarball = path.join(dir, 'image.tar');
  execFileSync('tar', ['-C', out, '-cf', tarball, 'manifest.json', configName, 'layer.tar']);
  fs.rmSync(root.dir, { recursive: true, force: true });
  return tarball;
}

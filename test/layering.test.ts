// The house's floors (reviews/architecture-round2.md): the three runtime subsystems (kflex, the controller, the
// materializer) stand side by side on the ground floor (lib/kube/, wire.ts, names.ts) and never import each other;
// the public construct entry loads none of them; the ground floor loads no construct and no cdk8s.
import * as fs from 'fs';
import * as path from 'path';

const LIB = path.resolve(__dirname, '../lib');
type Graph = Map<string, { files: string[]; packages: string[] }>;

/** Relative imports (resolved to lib-relative files) and package imports of every .ts file under lib/. */
function importGraph(): Graph {
  const graph: Graph = new Map();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const text = fs.readFileSync(p, 'utf8');
        const specs = [...text.matchAll(/(?:from|import|require\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
        const files: string[] = [];
        const packages: string[] = [];
        for (const s of specs) {
          if (!s.startsWith('.')) {
            packages.push(s);
            continue;
          }
          const base = path.resolve(path.dirname(p), s);
          const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
          if (hit && hit.startsWith(LIB)) files.push(path.relative(LIB, hit));
        }
        graph.set(path.relative(LIB, p), { files, packages });
      }
    }
  };
  walk(LIB);
  return graph;
}

const SUBSYSTEMS = ['cli', 'controller', 'materializer', 'activator'];
const folderOf = (f: string) => (f.includes('/') ? f.split('/')[0] : '');

/** Imports that cross between the runtime subsystems, as `from -> to`. */
export function crossings(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, { files }] of graph) {
    const a = folderOf(from);
    for (const to of files) {
      const b = folderOf(to);
      if (SUBSYSTEMS.includes(a) && SUBSYSTEMS.includes(b) && a !== b) out.push(`${from} -> ${to}`);
    }
  }
  return out.sort();
}

/** Every lib file `entry` loads, directly or not. */
function closure(graph: Graph, entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...(graph.get(f)?.files ?? []));
  }
  return seen;
}

const graph = importGraph();

test('kflex, the controller and the materializer never import each other', () => {
  expect(crossings(graph)).toEqual([]);
  // The check itself sees a crossing when there is one.
  const bad: Graph = new Map([['materializer/x.ts', { files: ['cli/y.ts', 'kube/z.ts'], packages: [] }]]);
  expect(crossings(bad)).toEqual(['materializer/x.ts -> cli/y.ts']);
});

test('the public construct entry loads no runtime subsystem', () => {
  const loaded = [...closure(graph, 'index.ts')].filter((f) => SUBSYSTEMS.includes(folderOf(f)));
  expect(loaded).toEqual([]);
});

test('the ground floor (kube/, wire.ts, names.ts, hosting-config.ts, idle.ts) loads no construct and no cdk8s', () => {
  const ground = (f: string) =>
    folderOf(f) === 'kube' || ['wire.ts', 'names.ts', 'hosting-config.ts', 'idle.ts'].includes(f);
  const problems: string[] = [];
  for (const f of [...graph.keys()].filter(ground)) {
    for (const g of closure(graph, f)) {
      const { packages } = graph.get(g)!;
      // The pure validators are shared with the ground floor (the controller checks names with them too).
      if (!ground(g) && !['errors.ts', 'api-validation.ts'].includes(g)) problems.push(`${f} loads ${g}`);
      for (const p of packages) if (/^(cdk8s|cdk8s-plus-28|constructs)$/.test(p)) problems.push(`${g} loads ${p}`);
    }
  }
  expect([...new Set(problems)]).toEqual([]);
});

test("the datastore's runtime face (endpoint, connect, provision, drop) loads no construct and no cdk8s", () => {
  const problems: string[] = [];
  for (const f of ['datastore/endpoint.ts', 'datastore/connect.ts', 'datastore/provision.ts', 'datastore/drop.ts']) {
    for (const g of closure(graph, f)) {
      for (const p of graph.get(g)!.packages)
        if (/^(cdk8s|cdk8s-plus-28|constructs)$/.test(p)) problems.push(`${g} loads ${p}`);
    }
  }
  expect(problems).toEqual([]);
  // PostgreSQL is talked to from the datastore room only.
  const pgUsers = [...graph].filter(([, { packages }]) => packages.includes('pg')).map(([f]) => f);
  expect(pgUsers.sort()).toEqual(['datastore/connect.ts', 'datastore/provision.ts']);
});

// Measures the house (ARCHITECTURE.md): longest lib files and functions, and imports between lib's rooms (the
// runtime subsystems cli/, controller/, materializer/, the ground floor kube/, and the flat construct files).
// Usage: npx ts-node --transpile-only scripts/architecture-metrics.ts [repo root]
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));
const lib = path.join(root, 'lib');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return files(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const room = (f: string) => {
  const rel = path.relative(lib, f);
  return rel.includes('/') ? rel.split('/')[0] : '(constructs and contract)';
};

const sizes: [string, number][] = [];
const fns: [string, number][] = [];
const arrows = new Map<string, number>();
for (const f of files(lib)) {
  const text = fs.readFileSync(f, 'utf8');
  const rel = path.relative(root, f);
  sizes.push([rel, text.split('\n').length - 1]);
  const src = ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true);
  const visit = (n: ts.Node, owner: string) => {
    let name: string | undefined;
    if (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) name = n.name?.getText();
    else if (ts.isConstructorDeclaration(n)) name = 'constructor';
    else if (ts.isArrowFunction(n) && ts.isVariableDeclaration(n.parent)) name = n.parent.name.getText();
    else if (ts.isClassDeclaration(n)) owner = n.name?.getText() ?? owner;
    if (name) {
      const a = src.getLineAndCharacterOfPosition(n.getStart()).line;
      const b = src.getLineAndCharacterOfPosition(n.getEnd()).line;
      fns.push([`${owner ? `${owner}.` : ''}${name} (${rel}:${a + 1})`, b - a + 1]);
    }
    ts.forEachChild(n, (c) => visit(c, owner));
  };
  visit(src, '');
  for (const m of text.matchAll(/from\s+['"](\.[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(f), m[1]);
    const hit = [`${target}.ts`, path.join(target, 'index.ts')].find((x) => fs.existsSync(x));
    if (!hit || !hit.startsWith(lib)) continue;
    const [a, b] = [room(f), room(hit)];
    if (a !== b) arrows.set(`${a} -> ${b}`, (arrows.get(`${a} -> ${b}`) ?? 0) + 1);
  }
}

sizes.sort((a, b) => b[1] - a[1]);
fns.sort((a, b) => b[1] - a[1]);
console.log(`lib: ${sizes.length} files, ${sizes.reduce((s, x) => s + x[1], 0)} lines`);
console.log('longest files:');
for (const [f, n] of sizes.slice(0, 5)) console.log(`  ${n} ${f}`);
for (const [f, n] of fns) if (f.startsWith(process.env.FN ?? '\u0000')) console.log(`  ${n} ${f}`);
console.log(`longest functions (${fns.length} in all, ${fns.filter((x) => x[1] > 100).length} over 100 lines):`);
for (const [f, n] of fns.slice(0, 5)) console.log(`  ${n} ${f}`);
console.log('imports between rooms (import statements):');
for (const [k, v] of [...arrows].sort()) console.log(`  ${k}: ${v}`);
const crossing = [...arrows].filter(([k]) => {
  const [a, b] = k.split(' -> ');
  const sub = ['cli', 'controller', 'materializer', 'activator'];
  return sub.includes(a) && sub.includes(b);
});
console.log(`between the runtime subsystems: ${crossing.reduce((s, [, v]) => s + v, 0)}`);

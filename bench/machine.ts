// What this machine charges for the operations a wake is made of, in a few seconds: a page fault on fresh memory (a
// starting Go process or PostgreSQL backend touches tens of MiB), a process start (fork and exec: every container,
// runc, CNI plugin and PostgreSQL backend), and, with perf installed, a context switch and a system call. Figures
// that are many times the usual ones (BENCHMARKS.md, issue 27 round 14) say the storms of bench:sleep and
// bench:storm will be too: compare runs only on machines that agree here.
// Usage: npm run bench:machine
import { execFileSync, spawnSync } from 'child_process';

const PAGE = 4096;

/** Microseconds per 4 KiB page to fault in `mib` MiB of fresh memory (best of three). */
function pageFaultUs(mib: number): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    // allocUnsafeSlow: memory straight from the allocator, not yet touched, so each page written is a fault.
    const t0 = process.hrtime.bigint();
    const b = Buffer.allocUnsafeSlow(mib << 20);
    for (let i = 0; i < b.length; i += PAGE) b[i] = 1;
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    best = Math.min(best, us / ((mib << 20) / PAGE));
  }
  return best;
}

/** Microseconds per start and exit of /bin/true (fork, exec, the dynamic loader, wait), median of `n`. */
function spawnUs(n: number): number {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync('/bin/true');
    xs.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  xs.sort((a, b) => a - b);
  return xs[Math.floor(n / 2)];
}

/** perf bench's microseconds per operation (`prefix`: a command to run perf under), or undefined without perf. */
function perfBench(args: string[], prefix: string[] = []): number | undefined {
  try {
    const [cmd, ...rest] = [...prefix, 'perf', 'bench', ...args];
    const out = execFileSync(cmd, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const m = /([\d.]+) usecs\/op/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const fmt = (x: number | undefined) => (x === undefined ? 'no perf' : x.toFixed(2));
console.log('| operation | µs |');
console.log('|---|---:|');
console.log(`| page fault on fresh memory (per 4 KiB page, 256 MiB touched) | ${pageFaultUs(256).toFixed(2)} |`);
console.log(`| start and exit of /bin/true from Node.js (spawnSync, median of 200) | ${spawnUs(200).toFixed(0)} |`);
const pipe = perfBench(['sched', 'pipe', '-l', '100000'], ['taskset', '-c', '0']);
console.log(`| two context switches on one core (perf bench sched pipe, one round trip) | ${fmt(pipe)} |`);
console.log(`| system call (perf bench syscall basic) | ${fmt(perfBench(['syscall', 'basic']))} |`);

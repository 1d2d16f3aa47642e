/**
 * What the benchmarks read about processes from Linux's /proc (proc(5)): a
 * process's CPU time and minor faults, its children, its command line and
 * its RSS. Every function answers for a process that is gone (or was never
 * there) without throwing: null, [] or NaN.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/** From /proc/PID/stat: parent PID, minor faults, user and system CPU seconds. */
export interface ProcStat {
  ppid: number;
  minorFaults: number;
  userS: number;
  systemS: number;
}

/** /proc/`pid`/stat, or null once the process is gone. */
export function procStat(pid: number): ProcStat | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The fields after "(comm) ": state(0) ppid(1) ... minflt(7) ... utime(11) stime(12).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), minorFaults: Number(f[7]), userS: Number(f[11]) / TICKS_PER_S, systemS: Number(f[12]) / TICKS_PER_S };
}

/** User plus system CPU seconds of `pid` so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  const s = procStat(pid);
  return s === null ? 0 : s.userS + s.systemS;
}

/** The PIDs whose parent is `pid`. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && procStat(Number(entry))?.ppid === pid) out.push(Number(entry));
  }
  return out;
}

/** The argument vector of `pid` ([] once it is gone). */
export function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** VmRSS of `pid` in MiB (NaN once it is gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}
